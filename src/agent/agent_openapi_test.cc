// The OpenAPI document served at /openapi.json describes exactly the routes a started agent
// serves: no endpoint undocumented, none documented that does not exist.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "web/web_assets.h"

namespace synod {
namespace {

// A port the kernel just handed out for `type` on 127.0.0.1, free again once this returns.
uint16_t FreePort(int type) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t length = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

using Routes = std::set<std::pair<std::string, std::string>>;

Routes Documented() {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.name != "openapi.json") continue;
    const nlohmann::json document = nlohmann::json::parse(asset.plain);
    EXPECT_EQ(document.value("openapi", ""), "3.1.0");
    Routes routes;
    for (const auto& [path, item] : document.at("paths").items()) {
      for (const auto& [method, operation] : item.items()) {
        if (method == "parameters" || method == "summary" || method == "description") continue;
        std::string upper = method;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        routes.emplace(upper, path);
        EXPECT_TRUE(operation.contains("responses")) << upper << " " << path;
      }
    }
    return routes;
  }
  ADD_FAILURE() << "openapi.json is not among the embedded assets";
  return {};
}

TEST(AgentOpenApi, DocumentsExactlyTheServedRoutes) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("synod-openapi-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  AgentConfig config;
  config.name = "openapi-test";
  config.bind = Ipv4::Parse("127.0.0.1").value();
  config.data_dir = dir.string();
  config.api_port = FreePort(SOCK_STREAM);
  config.peer_port = FreePort(SOCK_STREAM);
  config.raft_port = FreePort(SOCK_STREAM);
  config.broadcast_port = FreePort(SOCK_DGRAM);
  Agent agent(config);
  Status started = agent.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  const auto list = agent.Routes();
  std::thread loop([&agent] { agent.Run(); });
  agent.Stop();
  loop.join();
  std::filesystem::remove_all(dir);

  const Routes served(list.begin(), list.end());
  EXPECT_EQ(served.size(), list.size()) << "a route is registered twice";
  const Routes documented = Documented();
  for (const auto& route : served) {
    EXPECT_TRUE(documented.contains(route))
        << route.first << " " << route.second << " is served but not in openapi.json";
  }
  for (const auto& route : documented) {
    EXPECT_TRUE(served.contains(route))
        << route.first << " " << route.second << " is in openapi.json but not served";
  }
}

}  // namespace
}  // namespace synod
