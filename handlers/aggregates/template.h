// Template: a machine template the Host Factory provisions from, and its lifecycle:
//   Create -> Validate* / Update* (each records the changed fields and their previous values) -> Delete
// A deleted template refuses every change.
#pragma once

#include <string>

#include "handlers/aggregates/aggregate.h"
#include "schemas/snapshot_generated.h"

namespace hfe::handlers::aggregates {

struct TemplateSpec {
  std::string name;
  std::string template_type = "ec2";
  std::string instance_type;
  std::string image_id;
  int max_count = 0;
  std::string provider_api;
  KeyValues configuration;
};

class Template : public AggregateRoot {
 public:
  static Result<Template> Create(const std::string& template_id, const TemplateSpec& spec);
  static Result<Template> Load(const store::EventStore& store, const std::string& template_id);
  static Template Blank(const std::string& template_id) { return Template(template_id); }
  flatbuffers::Offset<schema::TemplateState> ToState(flatbuffers::FlatBufferBuilder& b) const;
  static Template FromState(const schema::TemplateState& s);

  Status Validate(const std::string& result, const KeyValues& details);
  // Sets configuration keys; the event carries the new and the previous values (empty for new keys).
  Status Update(const KeyValues& changes);
  Status Delete(const std::string& reason);

  const std::string& name() const { return name_; }
  const KeyValues& configuration() const { return configuration_; }
  const std::string& validation() const { return validation_; }
  int64_t template_version() const { return template_version_; }  // counts updates
  bool deleted() const { return deleted_; }
  std::string Get(const std::string& key) const;

 protected:
  void Apply(const schema::Envelope& e) override;

 private:
  explicit Template(std::string id) : AggregateRoot(std::move(id), "template") {}
  void Set(const std::string& key, const std::string& value);

  std::string name_, validation_;
  KeyValues configuration_;
  int64_t template_version_ = 0;
  bool deleted_ = false;
};

}  // namespace hfe::handlers::aggregates
