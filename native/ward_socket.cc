// ward_socket: the socket options Node.js does not expose.
//
// Each function works on a raw file descriptor and throws a JavaScript Error whose `code` is the errno
// name (EPERM, EADDRINUSE, ...) and whose `syscall` names the call that failed. The TypeScript wrapper
// (src/proxy/socket-options.ts) turns EPERM into an error that names CAP_NET_ADMIN.
#include <napi.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

Napi::Error SysError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  std::string msg = std::string(syscall) + " " + what + ": " + std::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a file descriptor");
  }
  return info[i].As<Napi::Number>().Int32Value();
}

int FamilyArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be the address family 4 or 6");
  }
  int f = info[i].As<Napi::Number>().Int32Value();
  if (f != 4 && f != 6) throw Napi::TypeError::New(info.Env(), "address family must be 4 or 6");
  return f;
}

void SetTransparentFd(Napi::Env env, int fd, int family) {
  int one = 1;
  int rc = family == 6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                       : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
  if (rc != 0) throw SysError(env, errno, "setsockopt", family == 6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT");
}

void SetMarkFd(Napi::Env env, int fd, uint32_t mark) {
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    throw SysError(env, errno, "setsockopt", "SO_MARK");
  }
}

void SetIntOpt(Napi::Env env, int fd, int level, int name, const char* what) {
  int one = 1;
  if (setsockopt(fd, level, name, &one, sizeof(one)) != 0) throw SysError(env, errno, "setsockopt", what);
}

// Fills a sockaddr for family 4 or 6; throws on an address that does not parse.
socklen_t FillAddr(Napi::Env env, int family, const std::string& ip, int port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof(*ss));
  if (port < 0 || port > 65535) throw Napi::RangeError::New(env, "port must be 0-65535");
  if (family == 4) {
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) {
      throw Napi::TypeError::New(env, "not an IPv4 address: " + ip);
    }
    return sizeof(sockaddr_in);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(ss);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) {
    throw Napi::TypeError::New(env, "not an IPv6 address: " + ip);
  }
  return sizeof(sockaddr_in6);
}

// A TCP socket, non-blocking and close-on-exec, as libuv expects to adopt it.
int NewTcpSocket(Napi::Env env, int family) {
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError(env, errno, "socket", "AF_INET/SOCK_STREAM");
  return fd;
}

struct FdGuard {
  int fd;
  ~FdGuard() { if (fd >= 0) close(fd); }
  int release() { int f = fd; fd = -1; return f; }
};

Napi::Value SetTransparent(const Napi::CallbackInfo& info) {
  SetTransparentFd(info.Env(), FdArg(info, 0), FamilyArg(info, 1));
  return info.Env().Undefined();
}

Napi::Value SetMark(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "mark must be a number");
  SetMarkFd(info.Env(), fd, info[1].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value GetMark(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  uint32_t mark = 0;
  socklen_t len = sizeof(mark);
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) != 0) throw SysError(info.Env(), errno, "getsockopt", "SO_MARK");
  return Napi::Number::New(info.Env(), mark);
}

Napi::Value GetTransparent(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  int family = FamilyArg(info, 1);
  int v = 0;
  socklen_t len = sizeof(v);
  int rc = family == 6 ? getsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &v, &len)
                       : getsockopt(fd, SOL_IP, IP_TRANSPARENT, &v, &len);
  if (rc != 0) throw SysError(info.Env(), errno, "getsockopt", "IP_TRANSPARENT");
  return Napi::Boolean::New(info.Env(), v != 0);
}

Napi::Value SetReusePort(const Napi::CallbackInfo& info) {
  SetIntOpt(info.Env(), FdArg(info, 0), SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT");
  return info.Env().Undefined();
}

// listenSocket(family, ip, port, transparent, reusePort) -> fd, bound but not yet listening
// (Node's server.listen({fd}) calls listen(2) with its own backlog).
Napi::Value ListenSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = FamilyArg(info, 0);
  if (info.Length() < 5 || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsBoolean() || !info[4].IsBoolean()) {
    throw Napi::TypeError::New(env, "listenSocket(family, ip, port, transparent, reusePort)");
  }
  sockaddr_storage ss;
  socklen_t len = FillAddr(env, family, info[1].As<Napi::String>().Utf8Value(), info[2].As<Napi::Number>().Int32Value(), &ss);
  FdGuard g{NewTcpSocket(env, family)};
  SetIntOpt(env, g.fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
  if (info[4].As<Napi::Boolean>().Value()) SetIntOpt(env, g.fd, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT");
  if (info[3].As<Napi::Boolean>().Value()) SetTransparentFd(env, g.fd, family);
  if (family == 6) SetIntOpt(env, g.fd, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
  if (bind(g.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw SysError(env, errno, "bind", info[1].As<Napi::String>().Utf8Value() + ":" + std::to_string(info[2].As<Napi::Number>().Int32Value()));
  }
  return Napi::Number::New(env, g.release());
}

// connectSocket(family, mark, transparent, bindIp|null, bindPort) -> fd, unconnected, with SO_MARK set
// (when mark != 0), IP_TRANSPARENT set (when transparent), and bound to bindIp:bindPort when bindIp is
// a string: with IP_TRANSPARENT that address need not be local, which is how ward keeps a client's
// address as the source of its upstream connection. Node connects it (net.Socket({fd}).connect()).
Napi::Value ConnectSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = FamilyArg(info, 0);
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsBoolean() || !info[4].IsNumber()) {
    throw Napi::TypeError::New(env, "connectSocket(family, mark, transparent, bindIp, bindPort)");
  }
  uint32_t mark = info[1].As<Napi::Number>().Uint32Value();
  bool transparent = info[2].As<Napi::Boolean>().Value();
  FdGuard g{NewTcpSocket(env, family)};
  // SO_REUSEADDR on connecting sockets too: when the kernel picks one of ward's own listener ports as
  // an ephemeral source port, the TIME-WAIT socket left behind would otherwise block the listener's
  // bind at ward's next start (a bind conflicts unless both sockets carry SO_REUSEADDR).
  SetIntOpt(env, g.fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
  if (mark != 0) SetMarkFd(env, g.fd, mark);
  if (transparent) SetTransparentFd(env, g.fd, family);
  if (info[3].IsString()) {
    std::string ip = info[3].As<Napi::String>().Utf8Value();
    int port = info[4].As<Napi::Number>().Int32Value();
    sockaddr_storage ss;
    socklen_t len = FillAddr(env, family, ip, port, &ss);
    // Let the kernel pick the port at connect time, so many upstream sockets may share a source address.
    if (port == 0) SetIntOpt(env, g.fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT");
    if (bind(g.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) throw SysError(env, errno, "bind", ip + ":" + std::to_string(port));
  }
  return Napi::Number::New(env, g.release());
}

// setBufferSizes(fd, sndbuf, rcvbuf): SO_SNDBUFFORCE / SO_RCVBUFFORCE (CAP_NET_ADMIN; not capped by
// net.core.wmem_max / rmem_max). 0 leaves a size as it is. The kernel doubles what it is given.
Napi::Value SetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "setBufferSizes(fd, sndbuf, rcvbuf)");
  }
  int snd = info[1].As<Napi::Number>().Int32Value();
  int rcv = info[2].As<Napi::Number>().Int32Value();
  if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) != 0) {
    throw SysError(env, errno, "setsockopt", "SO_SNDBUFFORCE");
  }
  if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0) {
    throw SysError(env, errno, "setsockopt", "SO_RCVBUFFORCE");
  }
  return env.Undefined();
}

// getBufferSizes(fd) -> [sndbuf, rcvbuf] as the kernel reports them.
Napi::Value GetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  int snd = 0, rcv = 0;
  socklen_t len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &len) != 0) throw SysError(env, errno, "getsockopt", "SO_SNDBUF");
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len) != 0) throw SysError(env, errno, "getsockopt", "SO_RCVBUF");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, snd));
  out.Set(uint32_t{1}, Napi::Number::New(env, rcv));
  return out;
}

// setAbortiveClose(fd, on): SO_LINGER {1, 0} when on (close(2) sends RST, also when the process or thread
// dies), {0, 0} when off (an orderly close).
Napi::Value SetAbortiveClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (info.Length() < 2 || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "setAbortiveClose(fd, on)");
  struct linger l = {info[1].As<Napi::Boolean>().Value() ? 1 : 0, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) != 0) throw SysError(env, errno, "setsockopt", "SO_LINGER");
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  if (close(fd) != 0) throw SysError(info.Env(), errno, "close", std::to_string(fd));
  return info.Env().Undefined();
}

// getNofileLimit() -> [soft, hard] of RLIMIT_NOFILE (RLIM_INFINITY as -1).
Napi::Value GetNofileLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) throw SysError(env, errno, "getrlimit", "RLIMIT_NOFILE");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, rl.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_cur)));
  out.Set(uint32_t{1}, Napi::Number::New(env, rl.rlim_max == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_max)));
  return out;
}

// setNofileLimit(soft, hard): setrlimit(RLIMIT_NOFILE) for the whole process. Raising the hard limit
// needs CAP_SYS_RESOURCE; the kernel caps both at fs.nr_open (EPERM past it).
Napi::Value SetNofileLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "setNofileLimit(soft, hard)");
  }
  double soft = info[0].As<Napi::Number>().DoubleValue();
  double hard = info[1].As<Napi::Number>().DoubleValue();
  if (soft < 0 || hard < 0 || soft > hard) throw Napi::RangeError::New(env, "need 0 <= soft <= hard");
  struct rlimit rl;
  rl.rlim_cur = static_cast<rlim_t>(soft);
  rl.rlim_max = static_cast<rlim_t>(hard);
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) throw SysError(env, errno, "setrlimit", "RLIMIT_NOFILE");
  return env.Undefined();
}

// exitNow(code): _exit(2). process.exit() first joins every worker thread, and one wedged in Node's own
// teardown would hold the process forever; ward calls this only once its shutdown is otherwise complete
// (rules removed, logs written synchronously).
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  _exit(code);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getNofileLimit", Napi::Function::New(env, GetNofileLimit));
  exports.Set("setNofileLimit", Napi::Function::New(env, SetNofileLimit));
  exports.Set("setTransparent", Napi::Function::New(env, SetTransparent));
  exports.Set("getTransparent", Napi::Function::New(env, GetTransparent));
  exports.Set("setMark", Napi::Function::New(env, SetMark));
  exports.Set("getMark", Napi::Function::New(env, GetMark));
  exports.Set("setReusePort", Napi::Function::New(env, SetReusePort));
  exports.Set("listenSocket", Napi::Function::New(env, ListenSocket));
  exports.Set("connectSocket", Napi::Function::New(env, ConnectSocket));
  exports.Set("setBufferSizes", Napi::Function::New(env, SetBufferSizes));
  exports.Set("getBufferSizes", Napi::Function::New(env, GetBufferSizes));
  exports.Set("setAbortiveClose", Napi::Function::New(env, SetAbortiveClose));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow));
  return exports;
}

}  // namespace

NODE_API_MODULE(ward_socket, Init)
