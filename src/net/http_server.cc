#include "net/http_server.h"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace synod {
namespace {

// A connection this young is closed to make room only if no older idle one is left.
constexpr auto kJustAccepted = std::chrono::milliseconds(100);

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; '+' is a space only in query strings. Bad escapes are kept literally.
std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) segments.emplace_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return segments;
}

}  // namespace

HttpResponse HttpResponse::Json(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse HttpResponse::Error(int status, const std::string& message) {
  return Json(status, nlohmann::json{{"error", message}});
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalid:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kNotLeader:
    case StatusCode::kNoQuorum:
    case StatusCode::kUnavailable:
    case StatusCode::kBusy:
    case StatusCode::kUnsupported:
    case StatusCode::kUnknownOutcome:
      return 503;
    case StatusCode::kError:
      break;
  }
  return 500;
}

HttpResponse HttpResponse::FromStatus(const Status& status) {
  return Json(HttpStatusFor(status.code()),
              nlohmann::json{{"error", status.message()}, {"code", StatusCodeName(status.code())}});
}

bool AcceptsGzip(const HttpRequest& request) {
  auto accept = request.headers.find("accept-encoding");
  return accept != request.headers.end() && accept->second.find("gzip") != std::string::npos;
}

HttpResponse HttpResponse::Stream(std::string content_type,
                                  std::function<void(std::shared_ptr<HttpStream>)> open) {
  HttpResponse response;
  response.content_type = std::move(content_type);
  response.open_stream = std::move(open);
  return response;
}

void HttpRouter::Handle(const std::string& method, const std::string& pattern,
                        HttpHandler handler) {
  routes_.push_back(Route{method, pattern, SplitPath(pattern), std::move(handler)});
}

std::vector<std::pair<std::string, std::string>> HttpRouter::Routes() const {
  std::vector<std::pair<std::string, std::string>> routes;
  for (const Route& route : routes_) routes.emplace_back(route.method, route.pattern);
  return routes;
}

void HttpRouter::Dispatch(HttpRequest& request, HttpResponder respond) const {
  const std::vector<std::string> segments = SplitPath(request.path);
  std::string allowed;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    for (size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& want = route.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        params[want.substr(1, want.size() - 2)] = segments[i];
      } else {
        matches = want == segments[i];
      }
    }
    if (!matches) continue;
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos) {
        allowed += allowed.empty() ? route.method : ", " + route.method;
      }
      continue;
    }
    request.path_params = std::move(params);
    route.handler(request, std::move(respond));
    return;
  }
  if (!allowed.empty()) {
    HttpResponse response =
        HttpResponse::Error(405, "method " + request.method + " is not allowed on " + request.path +
                                     " (allowed: " + allowed + ")");
    response.headers.emplace_back("Allow", allowed);
    respond(std::move(response));
    return;
  }
  respond(HttpResponse::Error(404, "no such endpoint: " + request.path));
}

// The body of a streamed response: writes to the connection, which serves nothing else.
class ConnectionStream final : public HttpStream {
 public:
  ConnectionStream(std::shared_ptr<TcpConnection> tcp, size_t max_backlog)
      : tcp_(std::move(tcp)), max_backlog_(max_backlog) {}

  bool Write(std::string bytes) override {
    if (closed_) return false;
    if (tcp_->queued_bytes() + bytes.size() > max_backlog_) {
      spdlog::info("http: closing a stream to {}: the client reads too slowly",
                   tcp_->peer_ip().ToString());
      Close();
      return false;
    }
    tcp_->Write(std::move(bytes));
    return true;
  }
  void Close() override {
    if (closed_) return;
    closed_ = true;
    auto callbacks = std::move(on_closed_);
    for (auto& callback : callbacks) callback();
    if (on_close_connection_) on_close_connection_();
  }
  bool closed() const override { return closed_; }
  void OnClosed(std::function<void()> callback) override {
    if (closed_) {
      callback();
      return;
    }
    on_closed_.push_back(std::move(callback));
  }
  // Closes the connection once the stream is closed by its writer.
  void SetConnectionCloser(std::function<void()> close) { on_close_connection_ = std::move(close); }

 private:
  std::shared_ptr<TcpConnection> tcp_;
  size_t max_backlog_;
  bool closed_ = false;
  std::vector<std::function<void()>> on_closed_;
  std::function<void()> on_close_connection_;
};

struct HttpServer::Connection : std::enable_shared_from_this<Connection> {
  HttpServer* server;
  std::shared_ptr<TcpConnection> stream;
  Timer idle_timer;
  http_parser parser{};
  http_parser_settings settings{};
  HttpRequest request;
  std::string url;
  std::string header_field;
  std::string header_value;
  bool header_field_done = false;  // the current field's value has started
  size_t header_bytes = 0;
  int reject_status = 0;  // set by a callback that found a limit exceeded
  std::string pending;    // received, not yet parsed
  bool busy = false;      // a request is being handled
  bool keep_alive = true;
  bool processing = false;  // inside Process()
  bool closed = false;
  std::shared_ptr<ConnectionStream> body_stream;  // set once the response is a stream
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
  const std::chrono::steady_clock::time_point accepted_at = idle_since;
  std::optional<std::chrono::steady_clock::time_point> request_began;  // its first byte

  Connection(HttpServer* owner, std::shared_ptr<TcpConnection> tcp)
      : server(owner), stream(std::move(tcp)), idle_timer(owner->loop_) {}

  void Start() {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
    settings.on_message_begin = [](http_parser* p) {
      auto* self = static_cast<Connection*>(p->data);
      self->request_began = std::chrono::steady_clock::now();
      self->request = HttpRequest{};
      self->url.clear();
      self->header_field.clear();
      self->header_value.clear();
      self->header_field_done = false;
      self->header_bytes = 0;
      return 0;
    };
    settings.on_url = [](http_parser* p, const char* at, size_t length) {
      auto* self = static_cast<Connection*>(p->data);
      self->url.append(at, length);
      return self->CountHeaderBytes(length);
    };
    settings.on_header_field = [](http_parser* p, const char* at, size_t length) {
      auto* self = static_cast<Connection*>(p->data);
      size_t counted = length;
      if (self->header_field_done || self->header_field.empty()) {
        self->CommitHeader();
        counted += 4;  // a new header line: ": " and CRLF count towards the limit too
      }
      for (size_t i = 0; i < length; ++i) {
        self->header_field.push_back(
            static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
      }
      return self->CountHeaderBytes(counted);
    };
    settings.on_header_value = [](http_parser* p, const char* at, size_t length) {
      auto* self = static_cast<Connection*>(p->data);
      self->header_field_done = true;
      self->header_value.append(at, length);
      return self->CountHeaderBytes(length);
    };
    settings.on_headers_complete = [](http_parser* p) {
      auto* self = static_cast<Connection*>(p->data);
      self->CommitHeader();
      if (p->http_major != 1) {
        self->reject_status = 505;
        return -1;
      }
      if ((p->flags & F_CONTENTLENGTH) &&
          p->content_length > self->server->limits_.max_body_bytes) {
        self->reject_status = 413;
        return -1;
      }
      return 0;
    };
    settings.on_body = [](http_parser* p, const char* at, size_t length) {
      auto* self = static_cast<Connection*>(p->data);
      if (self->request.body.size() + length > self->server->limits_.max_body_bytes) {
        self->reject_status = 413;
        return -1;
      }
      self->request.body.append(at, length);
      return 0;
    };
    settings.on_message_complete = [](http_parser* p) {
      auto* self = static_cast<Connection*>(p->data);
      self->busy = true;
      self->request_began.reset();
      self->keep_alive = http_should_keep_alive(p) != 0;
      http_parser_pause(p, 1);
      return 0;
    };
    ArmIdleTimer();
    std::weak_ptr<Connection> weak = weak_from_this();
    stream->Start(
        [weak](std::string_view bytes) {
          if (auto self = weak.lock()) {
            if (self->body_stream) return;  // a stream's client has nothing more to say
            self->pending.append(bytes);
            self->Process();
            if (!self->closed && !self->body_stream) self->ArmIdleTimer();
          }
        },
        [weak](int) {
          if (auto self = weak.lock()) self->Close();
        });
  }

  // Repeated header names are combined with ", " (RFC 9110, section 5.3).
  void CommitHeader() {
    if (header_field_done) {
      std::string& value = request.headers[header_field];
      value += value.empty() ? header_value : ", " + header_value;
    }
    header_field.clear();
    header_value.clear();
    header_field_done = false;
  }

  int CountHeaderBytes(size_t length) {
    header_bytes += length;
    if (header_bytes > server->limits_.max_header_bytes) {
      reject_status = 431;
      return -1;
    }
    return 0;
  }

  // Evictable: neither handling a request, nor sending an answer, nor streaming one.
  bool Idle() const { return !busy && !body_stream && !closed && stream->queued_bytes() == 0; }

  // Idle: idle_timeout from now; within a request: what is left of request_timeout.
  void ArmIdleTimer() {
    auto wait = server->limits_.idle_timeout;
    if (request_began) {
      const auto left =
          server->limits_.request_timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - *request_began);
      wait = std::clamp(left, std::chrono::milliseconds(0), wait);
    }
    std::weak_ptr<Connection> weak = weak_from_this();
    idle_timer.Start(wait, std::chrono::milliseconds(0), [weak] {
      if (auto self = weak.lock()) self->Close();
    });
  }

  void Process() {
    if (processing) return;  // a handler answered synchronously: the outer loop goes on
    processing = true;
    while (!busy && !closed && !pending.empty()) {
      size_t parsed = http_parser_execute(&parser, &settings, pending.data(), pending.size());
      pending.erase(0, parsed);
      const auto error = HTTP_PARSER_ERRNO(&parser);
      if (error == HPE_PAUSED) {
        http_parser_pause(&parser, 0);
        Dispatch();
        continue;
      }
      if (error != HPE_OK) {
        RejectAndClose(error);
        break;
      }
      if (parsed == 0) break;
    }
    processing = false;
    // Stop reading while a request is outstanding so that a client cannot pile up input (a
    // stream's client is read, and ignored, to notice when it leaves).
    if (busy && !body_stream) {
      stream->PauseReading();
    } else {
      stream->ResumeReading();
    }
  }

  void RejectAndClose(http_errno error) {
    HttpResponse response;
    if (reject_status == 413) {
      response = HttpResponse::Error(
          413, "request body exceeds " + std::to_string(server->limits_.max_body_bytes) + " bytes");
    } else if (reject_status == 505) {
      response = HttpResponse::Error(505, "only HTTP/1.x is supported");
    } else if (reject_status == 431) {
      response =
          HttpResponse::Error(431, "request headers exceed " +
                                       std::to_string(server->limits_.max_header_bytes) + " bytes");
    } else {
      response = HttpResponse::Error(
          400, std::string("malformed HTTP request: ") + http_errno_description(error));
    }
    keep_alive = false;
    busy = true;
    Send(std::move(response));
  }

  void Dispatch() {
    request.method = http_method_str(static_cast<http_method>(parser.method));
    http_parser_url parts{};
    http_parser_url_init(&parts);
    if (http_parser_parse_url(url.data(), url.size(), 0, &parts) != 0) {
      keep_alive = false;
      Send(HttpResponse::Error(400, "malformed request target: " + url));
      return;
    }
    const std::string_view target(url);
    request.path = "/";
    if (parts.field_set & (1 << UF_PATH)) {
      request.path = PercentDecode(
          target.substr(parts.field_data[UF_PATH].off, parts.field_data[UF_PATH].len), false);
    }
    if (parts.field_set & (1 << UF_QUERY)) {
      std::string_view query =
          target.substr(parts.field_data[UF_QUERY].off, parts.field_data[UF_QUERY].len);
      size_t at = 0;
      while (at <= query.size()) {
        size_t amp = std::min(query.find('&', at), query.size());
        std::string_view pair = query.substr(at, amp - at);
        if (!pair.empty()) {
          size_t eq = pair.find('=');
          request.query[PercentDecode(pair.substr(0, eq), true)] =
              eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
        }
        at = amp + 1;
      }
    }
    request.client_ip = stream->peer_ip();
    request.client_port = stream->peer_port();
    if (server->gate_) {
      if (std::optional<HttpResponse> refused = server->gate_(request)) {
        Send(std::move(*refused));
        return;
      }
    }
    std::weak_ptr<Connection> weak = weak_from_this();
    server->router_.Dispatch(request, [weak](HttpResponse response) {
      if (auto self = weak.lock()) self->Send(std::move(response));
    });
  }

  void Send(HttpResponse response) {
    if (closed) return;
    if (response.open_stream) return SendStream(std::move(response));
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                      ReasonPhrase(response.status) + "\r\nContent-Type: " + response.content_type +
                      "\r\nContent-Length: " + std::to_string(response.body.size()) +
                      "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") + "\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    out += "\r\n";
    out += response.body;
    if (keep_alive) {
      stream->Write(std::move(out));
      busy = false;
      idle_since = std::chrono::steady_clock::now();
      Process();
      return;
    }
    std::weak_ptr<Connection> weak = weak_from_this();
    stream->Write(std::move(out), [weak](int) {
      if (auto self = weak.lock()) self->Close();
    });
  }

  // The headers, then the body as the stream writes it; the connection ends with the stream.
  void SendStream(HttpResponse response) {
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                      ReasonPhrase(response.status) + "\r\nContent-Type: " + response.content_type +
                      "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    out += "\r\n";
    idle_timer.Stop();
    keep_alive = false;
    pending.clear();
    body_stream = std::make_shared<ConnectionStream>(stream, server->limits_.max_stream_backlog);
    std::weak_ptr<Connection> weak = weak_from_this();
    // Closed by its writer: what was written still goes out first.
    body_stream->SetConnectionCloser([weak] {
      auto self = weak.lock();
      if (!self || self->closed) return;
      self->stream->Write("", [weak](int) {
        if (auto flushed = weak.lock()) flushed->Close();
      });
    });
    stream->Write(std::move(out));
    stream->ResumeReading();  // to see the client leave
    response.open_stream(body_stream);
  }

  void Close() {
    if (closed) return;
    closed = true;
    if (body_stream) body_stream->Close();
    idle_timer.Stop();
    stream->Close();
    server->connections_.erase(shared_from_this());  // may destroy *this: nothing after
  }
};

HttpServer::HttpServer(EventLoop& loop, const HttpRouter& router, HttpLimits limits)
    : loop_(loop), router_(router), limits_(limits), listener_(loop) {}

HttpServer::~HttpServer() { Close(); }

Status HttpServer::Listen(Ipv4 address, uint16_t port) {
  return listener_.Listen(address, port, "HTTP", [this](std::shared_ptr<TcpConnection> tcp) {
    if (tls_) tcp->SecureWith(tls_->NewSession(/*client=*/false));
    if (connections_.size() >= limits_.max_connections) {
      // The longest idle, but not one accepted a moment ago if there is another: a burst of
      // connections is accepted in one go, before any of them is read, and a client that
      // sent its request at once would be closed by the crowd arriving after it.
      const auto just_now = std::chrono::steady_clock::now() - kJustAccepted;
      std::shared_ptr<Connection> oldest;
      bool oldest_new = false;
      for (const auto& connection : connections_) {
        if (!connection->Idle()) continue;
        const bool is_new = connection->accepted_at > just_now;
        if (!oldest || (oldest_new && !is_new) ||
            (oldest_new == is_new && connection->idle_since < oldest->idle_since)) {
          oldest = connection;
          oldest_new = is_new;
        }
      }
      if (oldest) {
        if (evicted_connections_++ % 1000 == 0) {
          spdlog::warn(
              "http: {} connections open, the most allowed: closing the longest idle "
              "to make room ({} so far)",
              connections_.size(), evicted_connections_);
        }
        oldest->Close();
      }
    }
    if (connections_.size() >= limits_.max_connections) {
      if (refused_connections_++ % 1000 == 0) {
        spdlog::warn("http: {} connections open, the most allowed: refusing more ({} so far)",
                     connections_.size(), refused_connections_);
      }
      const std::string body = nlohmann::json{{"error", "too many connections; try again"}}.dump();
      tcp->Write(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
              std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" +
              body,
          [tcp](int) { tcp->Close(); });
      return;
    }
    auto connection = std::make_shared<Connection>(this, std::move(tcp));
    connections_.insert(connection);
    connection->Start();
  });
}

void HttpServer::Close() {
  listener_.Close();
  auto connections = connections_;  // Close() erases from the set
  for (const auto& connection : connections) connection->Close();
}

}  // namespace synod
