// A private Redis server for a test: started on 127.0.0.1 on a free port,
// with no persistence, and stopped when the object goes (or on stop(), and
// started again on the same port with start()).
#pragma once

#include <taskdist/redis/connection.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace test_support {

inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("free_port: cannot bind");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// Starts a child process; returns its pid. `quiet`: its output goes to /dev/null.
inline pid_t spawn(const std::vector<std::string>& argv, bool quiet = false) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (quiet) {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
    return pid;
}

/// How a RedisServer keeps its data across stop() and start().
enum class Persistence {
    none,    ///< a restart comes back empty
    durable  ///< append-only file fsynced before each reply: nothing acknowledged is lost, even to SIGKILL
};

class RedisServer {
public:
    explicit RedisServer(Persistence p = Persistence::none) : port_(free_port()) {
        if (p == Persistence::durable) {
            char dir[] = "/tmp/taskdist-redis-XXXXXX";
            if (!::mkdtemp(dir)) throw std::runtime_error("RedisServer: cannot make a data folder");
            dir_ = dir;
        }
        start();
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    ~RedisServer() {
        stop();
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    int port() const noexcept { return port_; }
    taskdist::redis::Endpoint endpoint() const { return {"127.0.0.1", port_, std::chrono::milliseconds(2000)}; }

    void start() {
        std::vector<std::string> argv{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save", "", "--daemonize", "no", "--loglevel", "warning"};
        if (dir_.empty()) {
            argv.insert(argv.end(), {"--appendonly", "no"});
        } else {
            argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always", "--dir", dir_});
        }
        pid_ = spawn(argv, true);
        // Ready when it answers PING; a few seconds at most.
        taskdist::redis::Connection c(endpoint());
        for (int i = 0; i < 500; ++i) {
            try {
                if (c.command({"PING"}).str() == "PONG") return;
            } catch (const taskdist::redis::RedisError&) {
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        stop();
        throw std::runtime_error("redis-server did not answer on port " + std::to_string(port_) +
                                 " (is redis-server installed?)");
    }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    int port_;
    pid_t pid_ = -1;
    std::string dir_;
};

} // namespace test_support
