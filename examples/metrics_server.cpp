// Exposes a pool's statistics to Prometheus: runs some image-sized jobs on a
// pool, then serves GET /metrics on 127.0.0.1 in the text exposition format.
//
//   metrics_server [--port N] [--tasks N] [--requests N]
//     --port      port to listen on (default 9464; 0 picks a free one)
//     --tasks     jobs to run before serving (default 2000)
//     --requests  exit after this many requests (default 0: serve forever)
//
//   curl -s 127.0.0.1:9464/metrics | grep taskdist_tasks_completed_total
//
// A real service would serve from its own HTTP stack; the only taskdist part
// is taskdist::to_prometheus(pool.stats(), ...). Linux/POSIX sockets.
#include <taskdist/prometheus.hpp>
#include <taskdist/taskdist.hpp>

#include "metrics_server_options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using metrics_server::Args;
using metrics_server::parser;

// Some arithmetic standing in for real work: a 32x32 box blur.
double blur(int seed) {
    double grid[32][32];
    for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) grid[y][x] = std::sin(seed + x * 0.1 + y * 0.01);
    double sum = 0;
    for (int y = 1; y < 31; ++y)
        for (int x = 1; x < 31; ++x) sum += (grid[y - 1][x] + grid[y + 1][x] + grid[y][x - 1] + grid[y][x + 1]) / 4;
    return sum;
}

void respond(int fd, const char* status, const std::string& body) {
    std::string out = std::string("HTTP/1.1 ") + status +
                      "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < out.size();) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
    }
}

int serve(const Args& args) {
    taskdist::WorkerPool<int, double> pool([](int seed) { return blur(seed); }, {.workers = 4, .name = "blur"});
    for (long i = 0; i < args.tasks; ++i) pool.post(static_cast<int>(i));
    pool.wait_idle();

    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(args.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 16) != 0) {
        // NOLINTNEXTLINE(concurrency-mt-unsafe): the pool's threads never call strerror
        std::fprintf(stderr, "metrics_server: cannot listen on 127.0.0.1:%ld: %s\n", args.port, std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    for (long served = 0; args.requests == 0 || served < args.requests; ++served) {
        const int fd = ::accept(listener, nullptr, nullptr);
        if (fd < 0) continue;
        // The request line is all we need; read until the blank line ends the head.
        std::string head;
        char buf[1024];
        while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            head.append(buf, static_cast<std::size_t>(n));
        }
        if (head.rfind("GET /metrics ", 0) == 0) {
            respond(fd, "200 OK", taskdist::to_prometheus(pool.stats(), {.pool = "example"}));
        } else {
            respond(fd, "404 Not Found", "try /metrics\n");
        }
        ::close(fd);
    }
    ::close(listener);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("metrics_server", parser(a), argc, argv, [&] { return serve(a); });
}
