// MetricsHandler: updating series from events, the exposition format, the file and the loopback endpoint.
#include "handlers/monitoring/metrics_handler.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "handlers/aggregates/aggregate.h"
#include "ipc/region.h"

namespace hfe::handlers {

namespace {

const std::vector<double> kMachineBounds = {1, 2, 4, 8, 16, 32, 64, 128};
const std::vector<double> kDurationBounds = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600};
const std::vector<double> kLatencyBounds = {0.0001, 0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60};

const std::vector<double>& BoundsOf(const std::string& name) {
  if (name == "request_machine_count") return kMachineBounds;
  if (name == "event_processing_latency") return kLatencyBounds;
  return kDurationBounds;
}

const std::map<std::string, std::string> kHelp = {
    {"domain_events_total", "counter|Domain events handled, by event type."},
    {"requests_created_total", "counter|Requests created, by template and request type."},
    {"requests_completed_total", "counter|Requests completed, by template."},
    {"request_machine_count", "histogram|Machines asked for per request, by template."},
    {"request_duration_seconds", "histogram|Time from request creation to completion, by template."},
    {"event_processing_latency", "histogram|Seconds from an event's occurrence to its handling, by event type."},
};

std::string Label(const std::string& k, const std::string& v) {
  std::string out = k + "=\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string Num(double v) {
  if (std::isinf(v)) return "+Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

// ------------------------------------------------------------------------------------------ PromRegistry
void PromRegistry::Inc(const std::string& name, const std::string& labels, double by) { counters_[name][labels] += by; }

void PromRegistry::Observe(const std::string& name, const std::string& labels, double v, const std::vector<double>& bounds) {
  Hist& h = hists_[name][labels];
  if (h.bounds.empty()) {
    h.bounds = bounds;
    h.counts.assign(bounds.size() + 1, 0);
  }
  size_t i = 0;
  while (i < h.bounds.size() && v > h.bounds[i]) ++i;
  ++h.counts[i];
  h.sum += v;
}

double PromRegistry::Counter(const std::string& name, const std::string& labels) const {
  auto n = counters_.find(name);
  if (n == counters_.end()) return 0;
  auto l = n->second.find(labels);
  return l == n->second.end() ? 0 : l->second;
}

uint64_t PromRegistry::HistogramCount(const std::string& name, const std::string& labels) const {
  auto n = hists_.find(name);
  if (n == hists_.end()) return 0;
  auto l = n->second.find(labels);
  if (l == n->second.end()) return 0;
  uint64_t c = 0;
  for (uint64_t x : l->second.counts) c += x;
  return c;
}

std::string PromRegistry::Exposition(const std::map<std::string, std::string>& help) const {
  std::ostringstream out;
  auto header = [&](const std::string& name, const char* type) {
    auto h = help.find(name);
    std::string text = h == help.end() ? "" : h->second.substr(h->second.find('|') + 1);
    out << "# HELP " << name << " " << text << "\n# TYPE " << name << " " << type << "\n";
  };
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, v] : series) out << name << (labels.empty() ? "" : "{" + labels + "}") << " " << Num(v) << "\n";
  }
  for (const auto& [name, series] : hists_) {
    header(name, "histogram");
    for (const auto& [labels, h] : series) {
      uint64_t cum = 0;
      std::string sep = labels.empty() ? "" : labels + ",";
      for (size_t i = 0; i <= h.bounds.size(); ++i) {
        cum += h.counts[i];
        std::string le = i < h.bounds.size() ? Num(h.bounds[i]) : "+Inf";
        out << name << "_bucket{" << sep << "le=\"" << le << "\"} " << cum << "\n";
      }
      std::string l = labels.empty() ? "" : "{" + labels + "}";
      out << name << "_sum" << l << " " << Num(h.sum) << "\n" << name << "_count" << l << " " << cum << "\n";
    }
  }
  return out.str();
}

void PromRegistry::Restore(const std::string& text) {
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    std::string series = line.substr(0, sp);
    double value = std::strtod(line.c_str() + sp + 1, nullptr);
    std::string name = series.substr(0, series.find('{'));
    std::string labels = series.find('{') == std::string::npos ? "" : series.substr(series.find('{') + 1, series.size() - series.find('{') - 2);
    if (types[name] == "counter") {
      counters_[name][labels] = value;
      continue;
    }
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string sfx = suffix;
      if (name.size() <= sfx.size() || name.compare(name.size() - sfx.size(), sfx.size(), sfx) != 0) continue;
      std::string base = name.substr(0, name.size() - sfx.size());
      if (types[base] != "histogram") continue;
      const std::vector<double>& bounds = BoundsOf(base);
      if (sfx == "_bucket") {
        size_t le = labels.rfind("le=\"");
        std::string own = le == 0 ? "" : labels.substr(0, le - 1);
        std::string bound = labels.substr(le + 4, labels.size() - le - 5);
        Hist& h = hists_[base][own];
        if (h.bounds.empty()) {
          h.bounds = bounds;
          h.counts.assign(bounds.size() + 1, 0);
        }
        size_t i = 0;
        while (i < h.bounds.size() && Num(h.bounds[i]) != bound) ++i;
        // Cumulative in the text: store the cumulative now, turn into per-bucket below.
        h.counts[i] = static_cast<uint64_t>(value);
      } else if (sfx == "_sum") {
        hists_[base][labels].sum = value;
      }
      break;
    }
  }
  for (auto& [name, series] : hists_) {
    for (auto& [labels, h] : series) {
      for (size_t i = h.counts.size(); i-- > 1;) h.counts[i] -= std::min(h.counts[i], h.counts[i - 1]);
    }
  }
}

// ------------------------------------------------------------------------------------------ the handler
Result<std::shared_ptr<MetricsHandler>> MetricsHandler::Open(const MetricsOptions& o) {
  std::shared_ptr<MetricsHandler> h(new MetricsHandler());
  h->o_ = o;
  if (!o.path.empty()) {
    std::ifstream f(o.path);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      std::string text = ss.str();
      h->reg_.Restore(text);
      size_t at = text.find("# hfevents_checkpoint ");
      if (at != std::string::npos) h->checkpoint_.store(std::strtoull(text.c_str() + at + 22, nullptr, 10));
    }
  }
  if (o.port > 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
    addr.sin_port = htons(static_cast<uint16_t>(o.port));
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
      int err = errno;
      if (fd >= 0) ::close(fd);
      return ErrnoStatus("metrics endpoint on 127.0.0.1:" + std::to_string(o.port) + " (choose another --metrics-port)", err);
    }
    h->listen_fd_ = fd;
    h->bound_port_ = o.port;
    h->server_ = std::thread([raw = h.get()] { raw->Serve(); });
  }
  return h;
}

MetricsHandler::~MetricsHandler() {
  stop_.store(true);
  if (server_.joinable()) server_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  (void)WriteFile();
}

// A minimal HTTP/1.0 responder: GET /metrics -> the exposition; anything else -> 404.
void MetricsHandler::Serve() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[2048];
    ssize_t n = ::recv(c, buf, sizeof buf - 1, 0);
    std::string req(buf, n > 0 ? static_cast<size_t>(n) : 0);
    std::string body, status = "200 OK";
    if (req.rfind("GET /metrics", 0) == 0) {
      body = Exposition();
    } else {
      status = "404 Not Found";
      body = "only GET /metrics is served here\n";
    }
    std::string resp = "HTTP/1.0 " + status + "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)!::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
    ::close(c);
  }
}

std::string MetricsHandler::Exposition() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reg_.Exposition(kHelp);
}

void MetricsHandler::ObserveLatency(const std::string& event_type, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  reg_.Observe("event_processing_latency", Label("event_type", event_type), seconds, kLatencyBounds);
  dirty_.store(true, std::memory_order_release);
}

double MetricsHandler::Counter(const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  return reg_.Counter(name, labels);
}

uint64_t MetricsHandler::DurableThrough() const {
  if (o_.path.empty()) return UINT64_MAX;  // nothing to make durable: counts live in memory by choice
  return dirty_.load(std::memory_order_acquire) ? written_.load(std::memory_order_acquire) : UINT64_MAX;
}

Status MetricsHandler::WriteFile() const {
  if (o_.path.empty()) return Status::Ok();
  std::lock_guard<std::mutex> file_lock(file_mu_);
  std::string text;
  uint64_t cp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cp = checkpoint_.load();
    text = reg_.Exposition(kHelp) + "# hfevents_checkpoint " + std::to_string(cp) + "\n";
  }
  std::string tmp = o_.path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!(f << text)) return IoError("cannot write '" + tmp + "'");
  }
  if (::rename(tmp.c_str(), o_.path.c_str()) != 0) return ErrnoStatus("rename '" + tmp + "'", errno);
  written_.store(cp, std::memory_order_release);
  if (checkpoint_.load() == cp) const_cast<std::atomic<bool>&>(dirty_).store(false, std::memory_order_release);
  return Status::Ok();
}

Status MetricsHandler::Handle(const Event& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reg_.Inc("domain_events_total", Label("event_type", e.type_name));
    switch (e.envelope.body_type()) {
      case schema::EventBody::RequestCreatedEvent: {
        auto* c = e.envelope.body_as_RequestCreatedEvent();
        std::string tpl = aggregates::Str(c->template_id());
        reg_.Inc("requests_created_total",
                 Label("template_id", tpl) + "," + Label("request_type", schema::EnumNameRequestType(c->request_type())));
        reg_.Observe("request_machine_count", Label("template_id", tpl), c->machine_count(), kMachineBounds);
        request_created_at_[aggregates::Str(c->request_id())] = e.envelope.occurred_at_ns();
        request_template_[aggregates::Str(c->request_id())] = tpl;
        break;
      }
      case schema::EventBody::RequestCompletedEvent: {
        auto* c = e.envelope.body_as_RequestCompletedEvent();
        std::string tpl = aggregates::Str(c->template_id());
        if (tpl.empty()) tpl = request_template_[aggregates::Str(c->request_id())];
        reg_.Inc("requests_completed_total", Label("template_id", tpl));
        double secs = c->duration_seconds();
        auto created = request_created_at_.find(aggregates::Str(c->request_id()));
        if (secs <= 0 && created != request_created_at_.end()) {
          secs = static_cast<double>(e.envelope.occurred_at_ns() - created->second) / 1e9;
        }
        reg_.Observe("request_duration_seconds", Label("template_id", tpl), secs, kDurationBounds);
        request_created_at_.erase(aggregates::Str(c->request_id()));
        break;
      }
      default:
        break;
    }
    checkpoint_.store(e.view.position, std::memory_order_release);
    dirty_.store(true, std::memory_order_release);
  }
  if (++since_write_ >= static_cast<uint64_t>(std::max(1, o_.write_every))) {
    since_write_ = 0;
    HFE_RETURN_IF_ERROR(WriteFile());
  }
  return Status::Ok();
}

}  // namespace hfe::handlers
