#include "net/async_http_client.h"

#include <curl/curl.h>

#include "net/uv_util.h"

namespace synod {

struct AsyncHttpClient::Transfer {
  OutgoingHttpRequest request;
  Callback done;
  curl_slist* headers = nullptr;
  HttpReply reply;
  ~Transfer() { curl_slist_free_all(headers); }
};

// One watched socket; curl tells us which events it wants.
struct AsyncHttpClient::Watch {
  uv_poll_t* poll;
  AsyncHttpClient* client;
  int fd;
};

AsyncHttpClient::AsyncHttpClient(EventLoop& loop) : loop_(loop), timer_(new uv_timer_t) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)initialised;  // curl_multi_init fails below if it did not
  multi_ = curl_multi_init();
  uv_timer_init(loop_.raw(), timer_);
  timer_->data = this;
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &AsyncHttpClient::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &AsyncHttpClient::OnCurlTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // Keep idle connections for reuse: by default the cache holds about four per transfer in
  // flight, so a burst of webhooks to one receiver would open and close hundreds of them.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 512L);
}

AsyncHttpClient::~AsyncHttpClient() {
  for (auto& [easy, transfer] : transfers_) {
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
  }
  transfers_.clear();
  curl_multi_cleanup(multi_);  // releases every socket through OnSocket(CURL_POLL_REMOVE)
  uv_timer_stop(timer_);
  CloseAndDelete(timer_);
}

void AsyncHttpClient::Send(OutgoingHttpRequest request, Callback done) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    done(Status::Error("cannot create a libcurl handle for " + request.url));
    return;
  }
  auto transfer = std::make_unique<Transfer>();
  transfer->request = std::move(request);
  transfer->done = std::move(done);
  transfer->headers = PrepareCurlRequest(easy, transfer->request, &transfer->reply);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
  transfers_[easy] = std::move(transfer);
  const CURLMcode added = curl_multi_add_handle(multi_, easy);
  if (added != CURLM_OK) {
    auto failed = std::move(transfers_[easy]);
    transfers_.erase(easy);
    curl_easy_cleanup(easy);
    failed->done(Status::Error("cannot start a request to " + failed->request.url + ": " +
                               curl_multi_strerror(added)));
  }
}

int AsyncHttpClient::OnSocket(void* /*easy*/, int fd, int what, void* self, void* watch_ptr) {
  auto* client = static_cast<AsyncHttpClient*>(self);
  auto* watch = static_cast<Watch*>(watch_ptr);
  if (what == CURL_POLL_REMOVE) {
    if (watch != nullptr) {
      uv_poll_stop(watch->poll);
      CloseAndDelete(watch->poll);
      delete watch;
      curl_multi_assign(client->multi_, fd, nullptr);
    }
    return 0;
  }
  if (watch == nullptr) {
    watch = new Watch{new uv_poll_t, client, fd};
    uv_poll_init_socket(client->loop_.raw(), watch->poll, fd);
    watch->poll->data = watch;
    curl_multi_assign(client->multi_, fd, watch);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(watch->poll, events, [](uv_poll_t* poll, int status, int ready) {
    auto* w = static_cast<Watch*>(poll->data);
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (ready & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (ready & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    w->client->Drive(w->fd, flags);
  });
  return 0;
}

int AsyncHttpClient::OnCurlTimer(void* /*multi*/, long timeout_ms, void* self) {
  auto* client = static_cast<AsyncHttpClient*>(self);
  if (timeout_ms < 0) {
    uv_timer_stop(client->timer_);
    return 0;
  }
  // Even a zero timeout goes through the loop: curl must not be re-entered from its callback.
  uv_timer_start(
      client->timer_,
      [](uv_timer_t* timer) {
        static_cast<AsyncHttpClient*>(timer->data)->Drive(CURL_SOCKET_TIMEOUT, 0);
      },
      static_cast<uint64_t>(timeout_ms), 0);
  return 0;
}

void AsyncHttpClient::Drive(int fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  CollectFinished();
}

void AsyncHttpClient::CollectFinished() {
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    const CURLcode code = message->data.result;
    auto it = transfers_.find(easy);
    curl_multi_remove_handle(multi_, easy);
    if (it == transfers_.end()) {
      curl_easy_cleanup(easy);
      continue;
    }
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    transfers_.erase(it);
    if (code == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &transfer->reply.status);
    curl_easy_cleanup(easy);
    if (code != CURLE_OK) {
      transfer->done(
          Status::Error("cannot reach " + transfer->request.url + ": " + curl_easy_strerror(code)));
    } else {
      transfer->done(std::move(transfer->reply));
    }
  }
}

}  // namespace synod
