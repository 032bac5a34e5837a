// Schema evolution: a buffer written with the previous version of a table decodes with the current one (new
// fields take their defaults), and a buffer written now decodes with the previous code (it ignores what it
// does not know). Also: every catalogue type is in the union, and unknown union types pass the verifier.
#include <gtest/gtest.h>

#include "events_v1_generated.h"
#include "schemas/events_generated.h"

namespace hfe::schema {

TEST(SchemaEvolutionTest, OldBufferDecodesWithCurrentSchema) {
  flatbuffers::FlatBufferBuilder b;
  auto id = b.CreateString("req-1");
  auto tpl = b.CreateString("tpl-a");
  b.Finish(v1::CreateRequestCreatedEvent(b, id, v1::RequestType::Return, tpl, 3));
  flatbuffers::Verifier v(b.GetBufferPointer(), b.GetSize());
  ASSERT_TRUE(v.VerifyBuffer<RequestCreatedEvent>(nullptr));
  auto* e = flatbuffers::GetRoot<RequestCreatedEvent>(b.GetBufferPointer());
  EXPECT_EQ("req-1", e->request_id()->str());
  EXPECT_EQ(RequestType::Return, e->request_type());
  EXPECT_EQ("tpl-a", e->template_id()->str());
  EXPECT_EQ(3, e->machine_count());
  EXPECT_EQ(0, e->timeout_seconds());  // added later: default
  EXPECT_EQ(nullptr, e->tags());
}

TEST(SchemaEvolutionTest, NewBufferDecodesWithPreviousSchema) {
  flatbuffers::FlatBufferBuilder b;
  auto mid = b.CreateString("m-1");
  auto iid = b.CreateString("i-1");
  auto ip = b.CreateString("10.0.0.1");
  auto pub = b.CreateString("192.0.2.1");
  b.Finish(CreateMachineProvisionedEvent(b, mid, iid, ip, pub, 123));
  flatbuffers::Verifier v(b.GetBufferPointer(), b.GetSize());
  ASSERT_TRUE(v.VerifyBuffer<v1::MachineProvisionedEvent>(nullptr));
  auto* e = flatbuffers::GetRoot<v1::MachineProvisionedEvent>(b.GetBufferPointer());
  EXPECT_EQ("m-1", e->machine_id()->str());
  EXPECT_EQ("10.0.0.1", e->private_ip()->str());
}

TEST(SchemaEvolutionTest, CatalogueHasEveryFamily) {
  EXPECT_EQ(56, static_cast<int>(EventBody::MAX));  // the 54 of the catalogue, ParkedEvent, StreamMetadataEvent
  EXPECT_STREQ("RequestCreatedEvent", EnumNameEventBody(EventBody::RequestCreatedEvent));
  EXPECT_EQ(1, static_cast<int>(EventBody::RequestCreatedEvent));
  EXPECT_STREQ("HealthCheckEvent", EnumNameEventBody(EventBody::HealthCheckEvent));
}

TEST(SchemaEvolutionTest, UnknownEventTypePassesThroughTheVerifier) {
  // An envelope written by a newer producer with a body type this build does not know.
  flatbuffers::FlatBufferBuilder b;
  auto stream = b.CreateString("x-1");
  auto body = CreatePerformanceMetricEvent(b);
  EnvelopeBuilder eb(b);
  eb.add_stream_id(stream);
  eb.add_body_type(static_cast<EventBody>(200));
  eb.add_body(body.Union());
  FinishEnvelopeBuffer(b, eb.Finish());
  flatbuffers::Verifier v(b.GetBufferPointer(), b.GetSize());
  EXPECT_TRUE(VerifyEnvelopeBuffer(v));
  auto* env = GetEnvelope(b.GetBufferPointer());
  EXPECT_EQ("x-1", env->stream_id()->str());
  EXPECT_EQ(200, static_cast<int>(env->body_type()));
}

}  // namespace hfe::schema
