// Any bytes on the HTTP port: the server answers or closes, never crashes. Each input is sent
// to a real server on 127.0.0.1 through a socket pair-like loopback connection.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "net/http_server.h"

namespace {

struct Fixture {
  synod::EventLoop loop;
  synod::HttpRouter router;
  std::unique_ptr<synod::HttpServer> server;
  Fixture() {
    router.Handle("GET", "/v1/x/{id}", [](const synod::HttpRequest&, synod::HttpResponder respond) {
      respond(synod::HttpResponse::Json(200, {{"ok", true}}));
    });
    server = std::make_unique<synod::HttpServer>(loop, router);
    if (!server->Listen(synod::Ipv4::Parse("127.0.0.1").value(), 0).ok()) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr = synod::Ipv4::Parse("127.0.0.1").value().ToSockaddr(fixture->server->port());
  connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  for (int i = 0; i < 20; ++i) uv_run(fixture->loop.raw(), UV_RUN_NOWAIT);
  send(fd, data, size, MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  for (int i = 0; i < 50; ++i) uv_run(fixture->loop.raw(), UV_RUN_NOWAIT);
  close(fd);
  for (int i = 0; i < 20; ++i) uv_run(fixture->loop.raw(), UV_RUN_NOWAIT);
  return 0;
}
