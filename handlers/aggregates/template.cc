// Template aggregate: transitions and the events they raise.
#include "handlers/aggregates/template.h"

#include <algorithm>

#include "ipc/clock.h"

namespace hfe::handlers::aggregates {

namespace fb = flatbuffers;

Result<Template> Template::Create(const std::string& template_id, const TemplateSpec& spec) {
  if (template_id.empty()) return InvalidArgument("template id is empty; expected e.g. template-<name>");
  if (spec.name.empty()) return InvalidArgument("template \"" + template_id + "\": name is empty");
  if (spec.max_count < 0) return InvalidArgument("template \"" + template_id + "\": max count is negative");
  Template t(template_id);
  fb::FlatBufferBuilder b;
  auto body = schema::CreateTemplateCreatedEvent(
      b, b.CreateString(template_id), b.CreateString(spec.name), b.CreateString(spec.template_type),
      b.CreateString(spec.instance_type), b.CreateString(spec.image_id), spec.max_count, b.CreateString(spec.provider_api),
      EncodeKeyValues(b, spec.configuration));
  t.Raise(b, schema::EventBody::TemplateCreatedEvent, body.Union());
  return t;
}

Result<Template> Template::Load(const store::EventStore& store, const std::string& template_id) {
  Template t(template_id);
  HFE_RETURN_IF_ERROR(t.LoadFrom(store));
  return t;
}

std::string Template::Get(const std::string& key) const {
  auto it = std::find_if(configuration_.begin(), configuration_.end(), [&](const auto& kv) { return kv.first == key; });
  return it == configuration_.end() ? std::string() : it->second;
}

void Template::Set(const std::string& key, const std::string& value) {
  auto it = std::find_if(configuration_.begin(), configuration_.end(), [&](const auto& kv) { return kv.first == key; });
  if (it == configuration_.end()) configuration_.emplace_back(key, value);
  else it->second = value;
}

Status Template::Validate(const std::string& result, const KeyValues& details) {
  if (deleted_) return Refuse("validate", "deleted");
  fb::FlatBufferBuilder b;
  auto body = schema::CreateTemplateValidatedEvent(b, b.CreateString(id()), b.CreateString(name_),
                                                   b.CreateString(result), EncodeKeyValues(b, details));
  Raise(b, schema::EventBody::TemplateValidatedEvent, body.Union());
  return Status::Ok();
}

Status Template::Update(const KeyValues& changes) {
  if (deleted_) return Refuse("update", "deleted");
  if (changes.empty()) return InvalidArgument("template \"" + id() + "\": an update needs at least one change");
  KeyValues previous;
  for (const auto& [k, v] : changes) previous.emplace_back(k, Get(k));
  fb::FlatBufferBuilder b;
  auto body = schema::CreateTemplateUpdatedEvent(b, b.CreateString(id()), b.CreateString(name_),
                                                 EncodeKeyValues(b, changes), EncodeKeyValues(b, previous),
                                                 template_version_ + 1);
  Raise(b, schema::EventBody::TemplateUpdatedEvent, body.Union());
  return Status::Ok();
}

Status Template::Delete(const std::string& reason) {
  if (deleted_) return Refuse("delete", "deleted");
  fb::FlatBufferBuilder b;
  auto body = schema::CreateTemplateDeletedEventDirect(b, id().c_str(), name_.c_str(), reason.c_str(), clock::WallNanos());
  Raise(b, schema::EventBody::TemplateDeletedEvent, body.Union());
  return Status::Ok();
}

flatbuffers::Offset<schema::TemplateState> Template::ToState(fb::FlatBufferBuilder& b) const {
  return schema::CreateTemplateState(b, b.CreateString(id()), version().value_or(0), b.CreateString(name_),
                                     b.CreateString(validation_), EncodeKeyValues(b, configuration_), template_version_,
                                     deleted_);
}

Template Template::FromState(const schema::TemplateState& s) {
  Template t(Str(s.id()));
  t.name_ = Str(s.name());
  t.validation_ = Str(s.validation());
  t.configuration_ = DecodeKeyValues(s.configuration());
  t.template_version_ = s.template_version();
  t.deleted_ = s.deleted();
  t.RestoreVersion(s.version());
  return t;
}

void Template::Apply(const schema::Envelope& e) {
  switch (e.body_type()) {
    case schema::EventBody::TemplateCreatedEvent: {
      auto* c = e.body_as_TemplateCreatedEvent();
      name_ = Str(c->template_name());
      configuration_ = DecodeKeyValues(c->configuration());
      for (auto [key, value] : {std::pair{"instance_type", c->instance_type()}, std::pair{"image_id", c->image_id()},
                                std::pair{"provider_api", c->provider_api()}, std::pair{"template_type", c->template_type()}}) {
        if (value && value->size()) Set(key, value->str());
      }
      if (c->max_count()) Set("max_count", std::to_string(c->max_count()));
      break;
    }
    case schema::EventBody::TemplateValidatedEvent:
      validation_ = Str(e.body_as_TemplateValidatedEvent()->validation_result());
      break;
    case schema::EventBody::TemplateUpdatedEvent: {
      auto* u = e.body_as_TemplateUpdatedEvent();
      for (const auto& [k, v] : DecodeKeyValues(u->updated_fields())) Set(k, v);
      template_version_ = u->version();
      break;
    }
    case schema::EventBody::TemplateDeletedEvent:
      deleted_ = true;
      break;
    default:
      break;
  }
}

}  // namespace hfe::handlers::aggregates
