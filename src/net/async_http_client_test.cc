#include "net/async_http_client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "net/http_server.h"
#include "net/ipv4.h"

namespace synod {
namespace {

// Everything on one loop, as in the agent: a server and the client that calls it.
class AsyncHttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Handle("POST", "/receive-command",
                   [this](const HttpRequest& request, HttpResponder respond) {
                     received_.push_back(request);
                     respond(HttpResponse::Json(200, {{"success", true}}));
                   });
    router_.Handle("GET", "/slow", [this](const HttpRequest&, HttpResponder respond) {
      held_ = std::move(respond);  // never answered in time
    });
    server_ = std::make_unique<HttpServer>(loop_, router_);
    ASSERT_TRUE(server_->Listen(Ipv4::Parse("127.0.0.1").value(), 0).ok());
    client_ = std::make_unique<AsyncHttpClient>(loop_);
  }

  // Sends `request` and runs the loop until its callback ran.
  Result<HttpReply> Call(OutgoingHttpRequest request) {
    std::optional<Result<HttpReply>> outcome;
    client_->Send(std::move(request), [&](Result<HttpReply> reply) {
      outcome = std::move(reply);
      loop_.Stop();
    });
    Timer guard(loop_);
    guard.Start(std::chrono::seconds(10), std::chrono::milliseconds(0), [this] { loop_.Stop(); });
    loop_.Run();
    guard.Stop();
    if (!outcome) return Status::Error("no callback within 10 s");
    return *outcome;
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  EventLoop loop_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<AsyncHttpClient> client_;
  std::vector<HttpRequest> received_;
  HttpResponder held_;
};

TEST_F(AsyncHttpClientTest, PostsTheBodyAndHeadersAndReturnsTheReply) {
  OutgoingHttpRequest request;
  request.url = Url("/receive-command");
  request.body = R"({"sender": 0, "command": "START_TRANSMIT"})";
  request.headers = {"Idempotency-Key: synod-command-7"};
  Result<HttpReply> reply = Call(request);
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_EQ(reply.value().status, 200);
  EXPECT_EQ(nlohmann::json::parse(reply.value().body)["success"], true);
  ASSERT_EQ(received_.size(), 1u);
  EXPECT_EQ(received_[0].body, request.body);
  EXPECT_EQ(received_[0].headers.at("idempotency-key"), "synod-command-7");
  EXPECT_EQ(received_[0].headers.at("content-type"), "application/json");
}

TEST_F(AsyncHttpClientTest, AnHttpErrorIsAReply) {
  OutgoingHttpRequest request;
  request.url = Url("/nowhere");
  Result<HttpReply> reply = Call(request);
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_EQ(reply.value().status, 404);
}

TEST_F(AsyncHttpClientTest, ARefusedConnectionIsAnErrorNamingTheUrl) {
  OutgoingHttpRequest request;
  request.url = "http://127.0.0.1:1/receive-command";
  Result<HttpReply> reply = Call(request);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().find("127.0.0.1:1"), std::string::npos) << reply.error();
}

TEST_F(AsyncHttpClientTest, ASilentServerTimesOut) {
  OutgoingHttpRequest request;
  request.method = "GET";
  request.url = Url("/slow");
  request.timeout = std::chrono::milliseconds(200);
  Result<HttpReply> reply = Call(request);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().find("imeout"), std::string::npos) << reply.error();
}

TEST_F(AsyncHttpClientTest, OnlyHttpSchemesAreFollowed) {
  OutgoingHttpRequest request;
  request.url = "file:///etc/passwd";
  EXPECT_FALSE(Call(request).ok());
}

}  // namespace
}  // namespace synod
