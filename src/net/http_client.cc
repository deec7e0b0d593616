#include "net/http_client.h"

#include <curl/curl.h>

#include <strings.h>

#include <cctype>
#include <memory>

namespace synod {
namespace {

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<HttpReply*>(user)->body.append(data, size * count);
  return size * count;
}

// One header line of the answer; a status line starts a new answer (after a 100 Continue).
size_t AddHeader(char* data, size_t size, size_t count, void* user) {
  auto* reply = static_cast<HttpReply*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    reply->headers.clear();
    return line.size();
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  reply->headers.emplace_back(std::move(name), std::string(value));
  return line.size();
}

bool HasContentType(const std::vector<std::string>& headers) {
  for (const std::string& header : headers) {
    if (header.size() >= 13 && strncasecmp(header.c_str(), "content-type:", 13) == 0) return true;
  }
  return false;
}

}  // namespace

const std::string* HttpReply::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

curl_slist* PrepareCurlRequest(void* easy, const OutgoingHttpRequest& request, HttpReply* reply) {
  curl_slist* headers = HasContentType(request.headers)
                            ? nullptr
                            : curl_slist_append(nullptr, "Content-Type: application/json");
  for (const auto& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  if (!request.ca_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, request.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, AddHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, reply);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  return headers;
}

Result<HttpReply> HttpCall(const std::string& method, const std::string& url,
                           const std::string& body, std::chrono::milliseconds timeout) {
  OutgoingHttpRequest request;
  request.method = method;
  request.url = url;
  request.body = body;
  request.timeout = timeout;
  return HttpCall(request);
}

Result<HttpReply> HttpCall(const OutgoingHttpRequest& request) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialised) return Status::Error("cannot initialise libcurl");
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status::Error("cannot create a libcurl handle");
  const std::string& url = request.url;
  HttpReply reply;
  curl_slist* headers = PrepareCurlRequest(curl.get(), request, &reply);
  CURLcode rc = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Status::Error("cannot reach " + url + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

Result<HttpReply> HttpGetStream(OutgoingHttpRequest request,
                                const std::function<bool(std::string_view)>& on_body,
                                std::chrono::seconds idle_limit) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialised) return Status::Error("cannot initialise libcurl");
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status::Error("cannot create a libcurl handle");
  request.method = "GET";
  request.body.clear();
  request.timeout = std::chrono::milliseconds(0);
  request.headers.push_back("Accept: text/event-stream");
  struct Context {
    CURL* curl;
    const std::function<bool(std::string_view)>* on_body;
    HttpReply* reply;
    bool stopped = false;
  };
  HttpReply reply;
  Context context{curl.get(), &on_body, &reply};
  curl_slist* list = PrepareCurlRequest(curl.get(), request, &reply);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, static_cast<long>(idle_limit.count()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &context);
  curl_easy_setopt(
      curl.get(), CURLOPT_WRITEFUNCTION,
      +[](char* data, size_t size, size_t count, void* user) -> size_t {
        auto* context = static_cast<Context*>(user);
        const size_t length = size * count;
        long status = 0;
        curl_easy_getinfo(context->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
          context->reply->body.append(data, length);
        } else if (!(*context->on_body)(std::string_view(data, length))) {
          context->stopped = true;
          return 0;  // ends the transfer
        }
        return length;
      });
  CURLcode rc = curl_easy_perform(curl.get());
  curl_slist_free_all(list);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && context.stopped)) {
    return Status::Error("cannot read the stream from " + request.url + ": " +
                         curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace synod
