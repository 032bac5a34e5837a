// Registry: event type -> handlers.
#include <algorithm>

#include "handlers/envelope.h"
#include "handlers/handler.h"

namespace hfe::handlers {

void Registry::Remember(const std::shared_ptr<Handler>& h) {
  if (std::find(all_.begin(), all_.end(), h) == all_.end()) all_.push_back(h);
}

void Registry::Register(schema::EventBody type, std::shared_ptr<Handler> h) {
  auto& v = by_type_[static_cast<size_t>(type) & 0xff];
  if (std::find(v.begin(), v.end(), h.get()) == v.end()) v.push_back(h.get());
  Remember(h);
}

void Registry::RegisterAll(std::shared_ptr<Handler> h) {
  for (uint32_t t = 1; t <= EventTypeCount(); ++t) Register(static_cast<schema::EventBody>(t), h);
}

const std::vector<Handler*>& Registry::For(uint32_t type) const {
  static const std::vector<Handler*> kNone;
  return type < by_type_.size() ? by_type_[type] : kNone;
}

std::vector<std::pair<std::string, std::vector<std::string>>> Registry::Mappings() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (uint32_t t = 1; t <= EventTypeCount(); ++t) {
    std::vector<std::string> names;
    for (Handler* h : by_type_[t]) names.emplace_back(h->name());
    out.emplace_back(EventTypeName(t), std::move(names));
  }
  return out;
}

}  // namespace hfe::handlers
