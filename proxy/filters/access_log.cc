#include "proxy/filters/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"
#include "proxy/common/string_util.h"

namespace Proxy::Filters {

namespace {

constexpr std::string_view kDefaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

// One piece of a compiled format: literal text or a command.
struct Token {
  enum class Kind {
    Literal,
    StartTime,
    Req,
    Resp,
    Protocol,
    ResponseCode,
    ResponseFlags,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressNoPort,
    ResponseCodeDetails
  };
  static Token literal(std::string text) {
    Token token;
    token.text = std::move(text);
    return token;
  }

  Kind kind = Kind::Literal;
  std::string text;      // literal text
  std::string header;    // REQ/RESP: main header (lower-case)
  std::string fallback;  // REQ(A?B): alternative header
  size_t max_length = 0;
};

std::string startTime(SystemTime t) {
  const auto since_epoch = t.time_since_epoch();
  const time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[64];
  const size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  return absl::StrCat(std::string(buf, n), ".", absl::Dec(millis, absl::kZeroPad3), "Z");
}

absl::StatusOr<std::vector<Token>> compile(std::string_view format) {
  std::vector<Token> tokens;
  size_t pos = 0;
  while (pos < format.size()) {
    const size_t start = format.find('%', pos);
    if (start == std::string_view::npos) {
      tokens.push_back(Token::literal(std::string(format.substr(pos))));
      break;
    }
    if (start > pos) {
      tokens.push_back(Token::literal(std::string(format.substr(pos, start - pos))));
    }
    const size_t end = format.find('%', start + 1);
    if (end == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unterminated command at offset ", start, " in format"));
    }
    std::string_view command = format.substr(start + 1, end - start - 1);
    pos = end + 1;
    Token token;
    // Optional ":N" max length after a closing parenthesis (REQ(x):10).
    if (const size_t paren = command.rfind(')'); paren != std::string_view::npos &&
                                                 paren + 1 < command.size() &&
                                                 command[paren + 1] == ':') {
      token.max_length = std::strtoul(std::string(command.substr(paren + 2)).c_str(), nullptr, 10);
      command = command.substr(0, paren + 1);
    }
    auto headerArg = [&](std::string_view prefix) {
      std::string_view arg = command.substr(prefix.size(), command.size() - prefix.size() - 1);
      const size_t q = arg.find('?');
      token.header = StringUtil::toLower(arg.substr(0, q));
      if (q != std::string_view::npos) {
        token.fallback = StringUtil::toLower(arg.substr(q + 1));
      }
    };
    if (command == "START_TIME") {
      token.kind = Token::Kind::StartTime;
    } else if (StringUtil::startsWith(command, "REQ(") && StringUtil::endsWith(command, ")")) {
      token.kind = Token::Kind::Req;
      headerArg("REQ(");
    } else if (StringUtil::startsWith(command, "RESP(") && StringUtil::endsWith(command, ")")) {
      token.kind = Token::Kind::Resp;
      headerArg("RESP(");
    } else if (command == "PROTOCOL") {
      token.kind = Token::Kind::Protocol;
    } else if (command == "RESPONSE_CODE") {
      token.kind = Token::Kind::ResponseCode;
    } else if (command == "RESPONSE_FLAGS") {
      token.kind = Token::Kind::ResponseFlags;
    } else if (command == "BYTES_RECEIVED") {
      token.kind = Token::Kind::BytesReceived;
    } else if (command == "BYTES_SENT") {
      token.kind = Token::Kind::BytesSent;
    } else if (command == "DURATION") {
      token.kind = Token::Kind::Duration;
    } else if (command == "UPSTREAM_HOST") {
      token.kind = Token::Kind::UpstreamHost;
    } else if (command == "UPSTREAM_CLUSTER") {
      token.kind = Token::Kind::UpstreamCluster;
    } else if (command == "DOWNSTREAM_REMOTE_ADDRESS") {
      token.kind = Token::Kind::DownstreamRemoteAddress;
    } else if (command == "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT") {
      token.kind = Token::Kind::DownstreamRemoteAddressNoPort;
    } else if (command == "RESPONSE_CODE_DETAILS") {
      token.kind = Token::Kind::ResponseCodeDetails;
    } else if (command.empty()) {
      token.kind = Token::Kind::Literal;  // "%%" is a literal percent sign
      token.text = "%";
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported format command '%", std::string(command), "%'"));
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

void appendValue(std::string& out, std::string_view value, size_t max_length) {
  if (value.empty()) {
    out.push_back('-');
    return;
  }
  out.append(max_length > 0 && value.size() > max_length ? value.substr(0, max_length) : value);
}

void render(const std::vector<Token>& tokens, const Http::RequestHeaderMap* request,
            const Http::ResponseHeaderMap* response, const StreamInfo::StreamInfo& info,
            std::string& out) {
  for (const Token& t : tokens) {
    switch (t.kind) {
      case Token::Kind::Literal:
        out.append(t.text);
        break;
      case Token::Kind::StartTime:
        out.append(startTime(info.start_system));
        break;
      case Token::Kind::Req:
      case Token::Kind::Resp: {
        const Http::HeaderMap* map = t.kind == Token::Kind::Req
                                         ? static_cast<const Http::HeaderMap*>(request)
                                         : static_cast<const Http::HeaderMap*>(response);
        std::string_view value;
        if (map != nullptr) {
          // Envoy's REQ(:PATH) etc. use pseudo-header names; "host" means :authority on HTTP/1.
          const std::string& name = t.header == "host" ? std::string(":authority") : t.header;
          value = map->getValue(name);
          if (value.empty() && !t.fallback.empty()) {
            value = map->getValue(t.fallback);
          }
        }
        appendValue(out, value, t.max_length);
        break;
      }
      case Token::Kind::Protocol:
        out.append(info.protocol.has_value() ? Http::protocolString(*info.protocol) : "-");
        break;
      case Token::Kind::ResponseCode:
        absl::StrAppend(&out, info.response_code);
        break;
      case Token::Kind::ResponseFlags:
        out.append(StreamInfo::responseFlagsToString(info));
        break;
      case Token::Kind::BytesReceived:
        absl::StrAppend(&out, info.bytes_received);
        break;
      case Token::Kind::BytesSent:
        absl::StrAppend(&out, info.bytes_sent);
        break;
      case Token::Kind::Duration:
        absl::StrAppend(&out, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  info.end_monotonic - info.start_monotonic)
                                  .count());
        break;
      case Token::Kind::UpstreamHost:
        appendValue(out, info.upstream_host.valid() ? info.upstream_host.asString() : "", 0);
        break;
      case Token::Kind::UpstreamCluster:
        appendValue(out, info.upstream_cluster, 0);
        break;
      case Token::Kind::DownstreamRemoteAddress:
        appendValue(out, info.downstream_remote.valid() ? info.downstream_remote.asString() : "",
                    0);
        break;
      case Token::Kind::DownstreamRemoteAddressNoPort:
        appendValue(out, info.downstream_remote.valid() ? info.downstream_remote.ip() : "", 0);
        break;
      case Token::Kind::ResponseCodeDetails:
        appendValue(out, info.response_code_details, 0);
        break;
    }
  }
}

// Writes whole lines to one fd; shared read-only by every worker. A file log (`path` set) can
// be reopened: the new file takes over the same descriptor number.
class FdAccessLog : public AccessLog {
 public:
  FdAccessLog(int fd, bool owns_fd, std::vector<Token> tokens, std::string path = "")
      : fd_(fd), owns_fd_(owns_fd), tokens_(std::move(tokens)), path_(std::move(path)) {}
  ~FdAccessLog() override {
    if (owns_fd_) {
      ::close(fd_);
    }
  }

  void log(const Http::RequestHeaderMap* request, const Http::ResponseHeaderMap* response,
           const StreamInfo::StreamInfo& info) override {
    // One buffer per thread keeps its capacity: no allocation per line in the steady state.
    thread_local std::string line;
    line.clear();
    render(tokens_, request, response, info, line);
    // A single write(2) per line: O_APPEND keeps concurrent workers' lines whole.
    const char* data = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t rc = ::write(fd_, data, left);
      if (rc < 0 && errno == EINTR) {
        continue;
      }
      if (rc <= 0) {
        return;  // a full disk or closed pipe must not take the proxy down
      }
      data += rc;
      left -= static_cast<size_t>(rc);
    }
  }

  absl::Status reopen() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat("'", path_, "': ", strerror(errno)));
    }
    // One atomic step: a worker inside write(2) now finishes its line in the old file, every
    // later write goes to the new one, and fd_ never names anything else in between.
    const int rc = ::dup3(fd, fd_, O_CLOEXEC);
    const int error = errno;
    ::close(fd);
    if (rc < 0) {
      return absl::UnavailableError(absl::StrCat("'", path_, "': ", strerror(error)));
    }
    return absl::OkStatus();
  }

 private:
  const int fd_;
  const bool owns_fd_;
  const std::vector<Token> tokens_;
  const std::string path_;
};

// Every file access log alive, for reopenAccessLogs(). Logs are created on the main thread but
// the last reference may go on any worker; a weak_ptr is enough to tell.
class FileLogRegistry {
 public:
  static FileLogRegistry& get() {
    static FileLogRegistry* registry = new FileLogRegistry();  // never destroyed: no exit order
    return *registry;
  }

  void add(const std::shared_ptr<FdAccessLog>& log) {
    std::lock_guard<std::mutex> lock(mu_);
    logs_.erase(std::remove_if(logs_.begin(), logs_.end(),
                               [](const std::weak_ptr<FdAccessLog>& l) { return l.expired(); }),
                logs_.end());
    logs_.push_back(log);
  }

  std::vector<std::shared_ptr<FdAccessLog>> live() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<FdAccessLog>> out;
    for (const std::weak_ptr<FdAccessLog>& weak : logs_) {
      if (std::shared_ptr<FdAccessLog> log = weak.lock()) {
        out.push_back(std::move(log));
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<FdAccessLog>> logs_ ABSL_GUARDED_BY(mu_);
};

template <class LogFormatHolder>
absl::StatusOr<std::vector<Token>> formatFrom(const LogFormatHolder& config) {
  if (!config.has_log_format()) {
    return compile(kDefaultFormat);
  }
  const auto& format = config.log_format();
  if (format.has_json_format()) {
    return absl::InvalidArgumentError("log_format.json_format: not supported yet");
  }
  std::string text = format.text_format();
  if (format.has_text_format_source()) {
    if (!format.text_format_source().inline_string().empty()) {
      text = format.text_format_source().inline_string();
    } else {
      return absl::InvalidArgumentError(
          "log_format.text_format_source: only inline_string is supported");
    }
  }
  auto tokens = compile(text);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format.text_format: ", tokens.status().message()));
  }
  return tokens;
}

}  // namespace

absl::StatusOr<size_t> reopenAccessLogs() {
  // Outside the registry's lock: opening files may block.
  size_t reopened = 0;
  std::vector<std::string> failures;
  for (const std::shared_ptr<FdAccessLog>& log : FileLogRegistry::get().live()) {
    absl::Status status = log->reopen();
    if (status.ok()) {
      reopened++;
    } else {
      failures.push_back(std::string(status.message()));
    }
  }
  if (!failures.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot reopen access log ", absl::StrJoin(failures, ", ")));
  }
  return reopened;
}

std::string formatDefault(const Http::RequestHeaderMap* request,
                          const Http::ResponseHeaderMap* response,
                          const StreamInfo::StreamInfo& info) {
  static const std::vector<Token> tokens = *compile(kDefaultFormat);
  std::string out;
  render(tokens, request, response, info, out);
  return out;
}

absl::StatusOr<AccessLogSharedPtr> createAccessLog(
    const envoy::config::accesslog::v3::AccessLog& config) {
  const google::protobuf::Any& any = config.typed_config();
  envoy::extensions::access_loggers::file::v3::FileAccessLog file;
  envoy::extensions::access_loggers::stream::v3::StdoutAccessLog stdout_log;
  envoy::extensions::access_loggers::stream::v3::StderrAccessLog stderr_log;
  if (any.UnpackTo(&file)) {
    if (file.path().empty()) {
      return absl::InvalidArgumentError("typed_config.path: must not be empty");
    }
    auto tokens = formatFrom(file);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("typed_config.", tokens.status().message()));
    }
    const int fd = ::open(file.path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("typed_config.path: cannot open '", file.path(), "': ", strerror(errno)));
    }
    auto log = std::make_shared<FdAccessLog>(fd, true, std::move(*tokens), file.path());
    FileLogRegistry::get().add(log);
    return log;
  }
  if (any.UnpackTo(&stdout_log)) {
    auto tokens = formatFrom(stdout_log);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("typed_config.", tokens.status().message()));
    }
    return std::make_shared<FdAccessLog>(STDOUT_FILENO, false, std::move(*tokens));
  }
  if (any.UnpackTo(&stderr_log)) {
    auto tokens = formatFrom(stderr_log);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("typed_config.", tokens.status().message()));
    }
    return std::make_shared<FdAccessLog>(STDERR_FILENO, false, std::move(*tokens));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("typed_config: unsupported access logger type '", any.type_url(), "'"));
}

}  // namespace Proxy::Filters
