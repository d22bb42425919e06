// ringport from C++: RAII owners for the C handles, and a Channel between two processes (a
// client that sends requests, a server that answers them). Build and run (repository root):
//
//   cargo build --release -p ringport-ffi
//   c++ -std=c++17 -Wall -Iinclude examples/cpp/channel.cpp
//       target/release/libringport_c.a -lpthread -ldl -lm -o /tmp/channel && /tmp/channel
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ringport.h"

namespace rp {

// A failed call as an exception that carries its status and message.
struct Error : std::runtime_error {
    RpStatus status;
    Error(RpStatus s, const char *what)
        : std::runtime_error(std::string(what) + ": " + rp_status_name(s) + ": " + rp_last_error()),
          status(s) {}
};

inline RpStatus check(RpStatus s, const char *what, RpStatus allowed = RP_STATUS_OK) {
    if (s != RP_STATUS_OK && s != allowed)
        throw Error(s, what);
    return s;
}

// A channel handle owned by its object: freed once, when it goes.
class Channel {
  public:
    explicit Channel(RpChannel h) : handle_(h) {}
    Channel(Channel &&other) noexcept : handle_(other.handle_) { other.handle_.id = 0; }
    Channel(const Channel &) = delete;
    Channel &operator=(const Channel &) = delete;
    ~Channel() {
        if (handle_.id != 0)
            rp_channel_free(handle_);
    }

    static Channel connect(const std::string &path) {
        RpChannel h;
        check(rp_channel_connect(path.c_str(), &h), "connect");
        return Channel(h);
    }

    void send(std::string_view message) {
        check(rp_channel_send(handle_, reinterpret_cast<const uint8_t *>(message.data()),
                              message.size()),
              "send");
    }

    // The next message, or false once the peer has gone. The view is valid until the next call.
    bool recv(std::string_view &message) {
        const uint8_t *data;
        size_t len;
        if (check(rp_channel_recv(handle_, &data, &len), "recv", RP_STATUS_PEER_GONE) ==
            RP_STATUS_PEER_GONE)
            return false;
        message = std::string_view(reinterpret_cast<const char *>(data), len);
        return true;
    }

  private:
    RpChannel handle_;
};

class Listener {
  public:
    explicit Listener(const std::string &path) { check(rp_listener_bind(path.c_str(), &handle_), "bind"); }
    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;
    ~Listener() { rp_listener_free(handle_); }

    Channel accept() {
        RpChannel h;
        check(rp_listener_accept(handle_, &h), "accept");
        return Channel(h);
    }

  private:
    RpListener handle_{};
};

} // namespace rp

int main() {
    const std::string path = "@ringport-example-cpp-" + std::to_string(getpid());
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t child = fork(); // before either process makes a ringport call
    if (child == 0) {
        char byte;
        close(ready[1]);
        if (read(ready[0], &byte, 1) != 1)
            return 1;
        auto channel = rp::Channel::connect(path);
        for (int i = 0; i < 1000; i++) {
            channel.send("request " + std::to_string(i));
            std::string_view answer;
            if (!channel.recv(answer) || answer != "answer " + std::to_string(i))
                return 1;
        }
        std::puts("client: 1000 requests answered");
        return 0;
    }
    close(ready[0]);
    try {
        rp::Listener listener(path);
        if (write(ready[1], "r", 1) != 1)
            return 1;
        auto channel = listener.accept();
        std::string_view request;
        while (channel.recv(request)) {
            std::string number(request.substr(request.find(' ') + 1));
            channel.send("answer " + number);
        }
    } catch (const rp::Error &e) {
        std::fprintf(stderr, "server: %s\n", e.what());
        return 1;
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
