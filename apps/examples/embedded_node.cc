// embedded_node: an application that embeds a full lockmesh node in its own libuv loop
// (mesh::Node) and takes locks through it on the same loop (mesh::AsyncClient) — no
// separate daemon, no thread. The node joins its mesh like `lockmesh node` does (multicast
// discovery, or --join), and other processes on the host can use its socket too.
//
//   embedded_node --data-dir DIR --socket PATH [--node-id ID] [--cluster NAME]
//                 [--listen HOST:PORT] [--join HOST:PORT,...] [--no-multicast]
//                 [--expect N] [--cycles N] [--resource NAME]
//
// Every second it locks RESOURCE (exclusive, waiting), prints the fencing token, and
// unlocks; after --cycles cycles (default: forever) or on SIGINT/SIGTERM it closes its
// client and stops the node gracefully (a leader hands over first), then exits 0.
// Exit 1 on a start-up or lock error (with the reason on stderr), 2 on bad arguments.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

#include "mesh/client.h"
#include "mesh/node.h"

namespace {

struct App {
  uv_loop_t* loop = nullptr;
  std::unique_ptr<mesh::Node> node;
  std::unique_ptr<mesh::AsyncClient> client;
  uv_timer_t timer;
  uv_signal_t sigint, sigterm;
  std::string resource = "embedded-demo";
  long cycles_left = -1;  // -1: forever
  int exit_code = 0;
  bool stopping = false;

  void Stop(int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
    auto stop_node = [this] { node->Stop(/*graceful=*/true, [] {}); };
    if (client) {
      client->Close(stop_node);
    } else {
      stop_node();
    }
  }

  void Cycle() {
    if (stopping) return;
    if (cycles_left == 0) {
      Stop(0);
      return;
    }
    mesh::LockOptions options;  // exclusive, wait forever
    client->Lock(resource, options, [this](const mesh::Status& st, const mesh::Lock& lock) {
      if (!st.ok()) {
        fprintf(stderr, "embedded_node: cannot lock %s: %s\n", resource.c_str(),
                st.ToString().c_str());
        Stop(1);
        return;
      }
      printf("locked %s, fencing token %llu\n", resource.c_str(),
             static_cast<unsigned long long>(lock.token));
      fflush(stdout);
      client->Unlock(lock, /*rollback=*/false, [this](const mesh::Status& st) {
        if (!st.ok()) {
          fprintf(stderr, "embedded_node: cannot unlock: %s\n", st.ToString().c_str());
          Stop(1);
          return;
        }
        if (cycles_left > 0) --cycles_left;
        if (!stopping)
          uv_timer_start(
              &timer, [](uv_timer_t* t) { static_cast<App*>(t->data)->Cycle(); },
              cycles_left == 0 ? 0 : 1000, 0);
      });
    });
  }
};

int Usage(const char* why) {
  fprintf(stderr,
          "embedded_node: %s\nusage: embedded_node --data-dir DIR --socket PATH [--node-id ID] "
          "[--cluster NAME] [--listen HOST:PORT] [--join HOST:PORT,...] [--no-multicast] "
          "[--expect N] [--cycles N] [--resource NAME]\n",
          why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  App app;
  mesh::NodeOptions options;
  options.mesh.enabled = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--no-multicast") {
      options.mesh.multicast = false;
      continue;
    }
    if (!(v = value())) return Usage(("missing value after " + a).c_str());
    if (a == "--data-dir") {
      options.data_dir = v;
    } else if (a == "--socket") {
      options.socket_path = v;
    } else if (a == "--node-id") {
      options.node_id = v;
    } else if (a == "--cluster") {
      options.cluster = v;
    } else if (a == "--listen") {
      options.mesh.listen = v;
    } else if (a == "--join") {
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) options.mesh.join.push_back(item);
    } else if (a == "--expect") {
      options.mesh.expect = atoi(v);
    } else if (a == "--cycles") {
      app.cycles_left = atol(v);
    } else if (a == "--resource") {
      app.resource = v;
    } else {
      return Usage(("unknown option " + a).c_str());
    }
  }
  if (options.data_dir.empty() || options.socket_path.empty()) {
    return Usage("--data-dir and --socket are required");
  }
  app.loop = uv_default_loop();
  mesh::Status st = mesh::Node::Create(app.loop, options, &app.node);
  if (st.ok()) st = app.node->Start();
  if (!st.ok()) {
    fprintf(stderr, "embedded_node: cannot start the node: %s\n", st.ToString().c_str());
    return 1;
  }
  uv_timer_init(app.loop, &app.timer);
  app.timer.data = &app;
  for (uv_signal_t* s : {&app.sigint, &app.sigterm}) {
    uv_signal_init(app.loop, s);
    s->data = &app;
    uv_signal_start(
        s, [](uv_signal_t* h, int) { static_cast<App*>(h->data)->Stop(0); },
        s == &app.sigint ? SIGINT : SIGTERM);
  }
  mesh::ClientOptions co;
  co.socket_path = options.socket_path;
  co.client_name = "embedded_node";
  app.client = mesh::AsyncClient::Create(app.loop, co);
  app.client->Connect([&app](const mesh::Status& st) {
    if (!st.ok()) {
      fprintf(stderr, "embedded_node: cannot connect to its own node: %s\n", st.ToString().c_str());
      app.Stop(1);
      return;
    }
    app.Cycle();
  });
  uv_run(app.loop, UV_RUN_DEFAULT);
  app.client.reset();
  app.node.reset();
  uv_loop_close(app.loop);
  return app.exit_code;
}
