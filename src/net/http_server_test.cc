#include "net/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "net/http_client.h"

namespace synod {
namespace {

// Runs a server on 127.0.0.1:0 in a loop thread; requests come from the test thread.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Handle("GET", "/v1/echo/{word}", [](const HttpRequest& request, HttpResponder respond) {
      nlohmann::json body = {{"word", request.path_params.at("word")}};
      for (const auto& [key, value] : request.query) body["query"][key] = value;
      respond(HttpResponse::Json(200, body));
    });
    router_.Handle("PUT", "/v1/echo/{word}", [](const HttpRequest& request, HttpResponder respond) {
      respond(HttpResponse::Json(201, {{"body", request.body}}));
    });
    router_.Handle("GET", "/headers", [](const HttpRequest& request, HttpResponder respond) {
      respond(HttpResponse::Json(200, {{"x", request.headers.at("x-tag")}}));
    });
    // Answers later, from a timer, as a handler waiting for a commit would.
    router_.Handle("GET", "/later", [this](const HttpRequest&, HttpResponder respond) {
      later_ = std::make_unique<Timer>(loop_);
      later_->Start(std::chrono::milliseconds(20), std::chrono::milliseconds(0), [respond] {
        respond(HttpResponse::Json(200, {{"late", true}}));
      });
    });
    // A stream: one line now, one later, then the server ends it.
    router_.Handle("GET", "/stream", [this](const HttpRequest&, HttpResponder respond) {
      respond(HttpResponse::Stream("text/event-stream", [this](std::shared_ptr<HttpStream> out) {
        out->Write("data: one\n\n");
        later_ = std::make_unique<Timer>(loop_);
        later_->Start(std::chrono::milliseconds(20), std::chrono::milliseconds(0), [out] {
          out->Write("data: two\n\n");
          out->Close();
        });
      }));
    });
    // A stream that stays open until the client leaves.
    router_.Handle("GET", "/forever", [this](const HttpRequest&, HttpResponder respond) {
      respond(HttpResponse::Stream("text/event-stream", [this](std::shared_ptr<HttpStream> out) {
        out->Write("data: hello\n\n");
        out->OnClosed([this] { client_left_ = true; });
      }));
    });
    router_.Handle("GET", "/client", [](const HttpRequest& request, HttpResponder respond) {
      respond(HttpResponse::Json(
          200, {{"ip", request.client_ip.ToString()}, {"port", request.client_port}}));
    });
    server_ = std::make_unique<HttpServer>(loop_, router_,
                                           HttpLimits{1024, 4096, std::chrono::seconds(5)});
    // Refuses what carries X-Refuse, before routing (as the API's token check does).
    server_->SetGate([](const HttpRequest& request) -> std::optional<HttpResponse> {
      if (!request.headers.contains("x-refuse")) return std::nullopt;
      HttpResponse refused = HttpResponse::Error(401, "refused by the gate");
      refused.headers.emplace_back("WWW-Authenticate", "Bearer");
      return refused;
    });
    ASSERT_TRUE(server_->Listen(Ipv4::Parse("127.0.0.1").value(), 0).ok());
    thread_ = std::thread([this] { loop_.Run(); });
  }

  void TearDown() override {
    std::promise<void> closed;
    loop_.Post([&] {
      later_.reset();
      server_->Close();
      closed.set_value();
    });
    closed.get_future().wait();
    thread_.join();
    server_.reset();
  }

  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  // Sends raw bytes and returns everything the server answers until it closes or 2 s pass.
  std::string Raw(const std::string& bytes) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Ipv4::Parse("127.0.0.1").value().ToSockaddr(server_->port());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    EXPECT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    std::string answer;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<size_t>(n));
    close(fd);
    return answer;
  }

  EventLoop loop_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<Timer> later_;
  std::atomic<bool> client_left_{false};
  std::thread thread_;
};

TEST_F(HttpServerTest, RoutesWithParamsAndQuery) {
  auto reply = HttpCall("GET", Url("/v1/echo/hi%20there?x=1&y=a+b"));
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_EQ(reply.value().status, 200);
  auto body = nlohmann::json::parse(reply.value().body);
  EXPECT_EQ(body["word"], "hi there");
  EXPECT_EQ(body["query"]["x"], "1");
  EXPECT_EQ(body["query"]["y"], "a b");
}

TEST_F(HttpServerTest, RepeatedHeadersAreCombined) {
  const std::string answer =
      Raw("GET /headers HTTP/1.1\r\nX-Tag: a\r\nx-tag: b\r\nConnection: close\r\n\r\n");
  EXPECT_NE(answer.find("\"x\":\"a, b\""), std::string::npos) << answer;
}

TEST_F(HttpServerTest, BodyReachesHandler) {
  auto reply = HttpCall("PUT", Url("/v1/echo/x"), "payload");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply.value().status, 201);
  EXPECT_EQ(nlohmann::json::parse(reply.value().body)["body"], "payload");
}

TEST_F(HttpServerTest, UnknownPathAndWrongMethodAreJsonErrors) {
  auto missing = HttpCall("GET", Url("/nope"));
  EXPECT_EQ(missing.value().status, 404);
  EXPECT_TRUE(nlohmann::json::parse(missing.value().body).contains("error"));
  auto wrong = Raw("DELETE /v1/echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(wrong.find("HTTP/1.1 405"), std::string::npos);
  EXPECT_NE(wrong.find("Allow: GET, PUT"), std::string::npos);
}

TEST_F(HttpServerTest, HostileRequestsGet4xx) {
  EXPECT_NE(Raw("HELLO\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(Raw("GET /v1/echo/x HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n")
                .find("HTTP/1.1 431"),
            std::string::npos);
  EXPECT_NE(Raw("PUT /v1/echo/x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n").find("HTTP/1.1 413"),
            std::string::npos);
  // Many small headers add up, line overhead included.
  std::string many = "GET /v1/echo/x HTTP/1.1\r\n";
  for (int i = 0; i < 150; ++i) many += "X-A: b\r\n";
  EXPECT_NE(Raw(many + "\r\n").find("HTTP/1.1 431"), std::string::npos);
  EXPECT_NE(Raw("GET /v1/echo/x HTTP/9.9\r\n\r\n").find("HTTP/1.1 505"), std::string::npos);
  // Chunked bodies are counted as they arrive.
  std::string chunked = "PUT /v1/echo/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) chunked += "3e8\r\n" + std::string(1000, 'z') + "\r\n";
  EXPECT_NE(Raw(chunked).find("HTTP/1.1 413"), std::string::npos);
  // Still serving.
  EXPECT_EQ(HttpCall("GET", Url("/v1/echo/ok")).value().status, 200);
}

TEST_F(HttpServerTest, KeepAliveAndPipelinedRequestsAnsweredInOrder) {
  const std::string answer =
      Raw("GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /v1/echo/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const size_t first = answer.find("\"late\":true");
  const size_t second = answer.find("\"word\":\"second\"");
  ASSERT_NE(first, std::string::npos) << answer;
  ASSERT_NE(second, std::string::npos) << answer;
  EXPECT_LT(first, second);
  EXPECT_NE(answer.find("Connection: keep-alive"), std::string::npos);
}

}  // namespace
}  // namespace synod

namespace synod {
namespace {

TEST_F(HttpServerTest, StreamSendsHeadersThenWritesUntilClosed) {
  const std::string answer = Raw("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(answer.find("HTTP/1.1 200 OK"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(answer.find("Content-Length"), std::string::npos);
  const size_t one = answer.find("data: one");
  const size_t two = answer.find("data: two");
  ASSERT_NE(one, std::string::npos) << answer;
  ASSERT_NE(two, std::string::npos) << answer;
  EXPECT_LT(one, two);
}

TEST_F(HttpServerTest, StreamLearnsThatItsClientLeft) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Ipv4::Parse("127.0.0.1").value().ToSockaddr(server_->port());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string answer;
  char buf[4096];
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  while (answer.find("data: hello") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << answer;
    answer.append(buf, static_cast<size_t>(n));
  }
  EXPECT_FALSE(client_left_);
  close(fd);
  for (int i = 0; i < 200 && !client_left_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(client_left_);
  EXPECT_EQ(HttpCall("GET", Url("/v1/echo/ok")).value().status, 200);
}

// Restarts the server with these limits.
void Restart(EventLoop& loop, HttpRouter& router, std::unique_ptr<HttpServer>& server,
             HttpLimits limits) {
  std::promise<void> reopened;
  loop.Post([&] {
    server->Close();
    server = std::make_unique<HttpServer>(loop, router, limits);
    ASSERT_TRUE(server->Listen(Ipv4::Parse("127.0.0.1").value(), 0).ok());
    reopened.set_value();
  });
  reopened.get_future().wait();
}

// A connected socket that sent `request` and read the start of the answer.
int Held(uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Ipv4::Parse("127.0.0.1").value().ToSockaddr(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char buf[1024];
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  EXPECT_GT(recv(fd, buf, sizeof buf, 0), 0);
  return fd;
}

// Whether the server closed `fd` (within 2 s).
bool ClosedByServer(int fd) {
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
  }
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

TEST_F(HttpServerTest, AtTheLimitANewConnectionTakesTheLongestIdlesPlace) {
  HttpLimits limits;
  limits.max_connections = 2;
  Restart(loop_, router_, server_, limits);
  const std::string get = "GET /v1/echo/x HTTP/1.1\r\nHost: x\r\n\r\n";
  const int first = Held(server_->port(), get);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int second = Held(server_->port(), get);
  // Idle clients cannot lock others out: the newcomer is served...
  EXPECT_EQ(
      Raw("GET /v1/echo/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("HTTP/1.1 200"),
      0u);
  // ...in the place of the one idle the longest.
  EXPECT_TRUE(ClosedByServer(first));
  EXPECT_EQ(send(second, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  char buf[1024];
  EXPECT_GT(recv(second, buf, sizeof buf, 0), 0);
  close(first);
  close(second);
}

TEST_F(HttpServerTest, WhenEveryConnectionIsBusyOneMoreIsAnswered503) {
  HttpLimits limits;
  limits.max_connections = 2;
  Restart(loop_, router_, server_, limits);
  // Streams are never closed for room.
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(Held(server_->port(), "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  const std::string refused = Raw("GET /v1/echo/x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many connections"), std::string::npos) << refused;
  for (int fd : held) close(fd);
  // Room again once they are gone.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = Raw("GET /v1/echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                 .find("HTTP/1.1 200") != std::string::npos;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, AClientTricklingARequestIsCutOff) {
  HttpLimits limits;
  limits.request_timeout = std::chrono::milliseconds(300);
  Restart(loop_, router_, server_, limits);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Ipv4::Parse("127.0.0.1").value().ToSockaddr(server_->port());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const auto started = std::chrono::steady_clock::now();
  std::string line = "GET /v1/echo/x HTTP/1.1\r\n";
  bool cut = false;
  // One header line every 50 ms, for up to 3 s: each byte would reset a plain idle timer.
  for (int i = 0; i < 60 && !cut; ++i) {
    cut = send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0;
    line = "X-Slow-" + std::to_string(i) + ": y\r\n";
    char buf[256];
    cut = cut || recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(cut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  close(fd);
}

TEST_F(HttpServerTest, TheGateAnswersBeforeRoutingAndSeesTheClient) {
  const std::string refused =
      Raw("PUT /v1/echo/x HTTP/1.1\r\nX-Refuse: 1\r\nContent-Length: 2\r\n\r\nhi"
          "GET /nope HTTP/1.1\r\nX-Refuse: 1\r\n\r\n"
          "GET /v1/echo/ok HTTP/1.1\r\nConnection: close\r\n\r\n");
  // Refused whatever the path, and the connection goes on serving.
  EXPECT_EQ(refused.find("HTTP/1.1 401 Unauthorized"), 0u) << refused;
  EXPECT_NE(refused.find("WWW-Authenticate: Bearer\r\n"), std::string::npos);
  EXPECT_EQ(refused.find("404"), std::string::npos) << refused;
  EXPECT_NE(refused.find("HTTP/1.1 401", 10), std::string::npos) << refused;
  EXPECT_NE(refused.find("\"word\":\"ok\""), std::string::npos) << refused;
  auto client = HttpCall("GET", Url("/client"));
  ASSERT_TRUE(client.ok());
  auto body = nlohmann::json::parse(client.value().body);
  EXPECT_EQ(body["ip"], "127.0.0.1");
  EXPECT_GT(body["port"].get<int>(), 0);
  // Inside the node, the router serves without asking the gate.
  HttpRequest internal;
  internal.method = "GET";
  internal.path = "/v1/echo/inside";
  internal.headers["x-refuse"] = "1";
  int status = 0;
  router_.Dispatch(internal, [&status](HttpResponse response) { status = response.status; });
  EXPECT_EQ(status, 200);
}

TEST(HttpRouter, ListsItsRoutes) {
  HttpRouter router;
  auto ignore = [](const HttpRequest&, HttpResponder) {};
  router.Handle("GET", "/v1/kv/{key}", ignore);
  router.Handle("PUT", "/v1/kv/{key}", ignore);
  router.Handle("GET", "/timer/", ignore);
  using Routes = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(router.Routes(),
            (Routes{{"GET", "/v1/kv/{key}"}, {"PUT", "/v1/kv/{key}"}, {"GET", "/timer/"}}));
}

}  // namespace
}  // namespace synod
