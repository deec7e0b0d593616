// The OpenAPI document served at /openapi.json is well formed (references resolve, path
// parameters are declared, operation ids are unique) and describes exactly the routes a started
// agent serves: no endpoint undocumented, none documented that does not exist.
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

// Every "$ref" in `node` names something in `document` ("#/components/...").
void CheckRefs(const nlohmann::json& document, const nlohmann::json& node, const std::string& at) {
  if (node.is_object()) {
    if (auto ref = node.find("$ref"); ref != node.end()) {
      ASSERT_TRUE(ref->is_string()) << at;
      const std::string target = ref->get<std::string>();
      ASSERT_EQ(target.rfind("#/", 0), 0u) << at << ": " << target;
      EXPECT_TRUE(document.contains(nlohmann::json::json_pointer(target.substr(1))))
          << at << " refers to " << target << ", which does not exist";
    }
    for (const auto& [key, value] : node.items()) CheckRefs(document, value, at + "/" + key);
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i)
      CheckRefs(document, node[i], at + "/" + std::to_string(i));
  }
}

// The parameters in the path's {name} segments, each declared "in": "path", required.
void CheckPathParameters(const std::string& path, const nlohmann::json& item,
                         const nlohmann::json& operation) {
  std::set<std::string> in_path;
  for (size_t open = path.find('{'); open != std::string::npos; open = path.find('{', open + 1)) {
    in_path.insert(path.substr(open + 1, path.find('}', open) - open - 1));
  }
  std::set<std::string> declared;
  for (const nlohmann::json* list : {&item, &operation}) {
    for (const auto& parameter : list->value("parameters", nlohmann::json::array())) {
      if (parameter.value("in", "") != "path") continue;
      EXPECT_TRUE(parameter.value("required", false)) << path << " " << parameter.dump();
      declared.insert(parameter.value("name", ""));
    }
  }
  EXPECT_EQ(declared, in_path) << path;
}

Routes Documented() {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.name != "openapi.json") continue;
    const nlohmann::json document = nlohmann::json::parse(asset.plain);
    EXPECT_TRUE(document.contains("info") && document["info"].contains("title") &&
                document["info"].contains("version"));
    CheckRefs(document, document, "#");
    std::set<std::string> operation_ids;
    EXPECT_EQ(document.value("openapi", ""), "3.1.0");
    Routes routes;
    for (const auto& [path, item] : document.at("paths").items()) {
      for (const auto& [method, operation] : item.items()) {
        if (method == "parameters" || method == "summary" || method == "description") continue;
        std::string upper = method;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        routes.emplace(upper, path);
        EXPECT_TRUE(operation.contains("responses")) << upper << " " << path;
        EXPECT_TRUE(operation_ids.insert(operation.value("operationId", "")).second)
            << upper << " " << path << ": no operationId, or one used twice";
        CheckPathParameters(path, item, operation);
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
