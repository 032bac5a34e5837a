// The command bus: workflow handlers send commands (schemas/commands.fbs) to one command-handling process
// over shared memory (`<store>/rings/commands.bus`, laid out in command_bus_format.h).
//
//   auto tx = CommandSender::Open(store.dir());        // any number, in any processes (up to 16 at a time)
//   tx->Send(FinishCommand(b, CommandBody::StartProvisioningCommand, body.Union(), correlation, position));
//
//   auto rx = CommandReceiver::Open(store.dir());      // one at a time; a dead one is replaced
//   rx->Receive([](const schema::Command& c) { ... }, 64);
//   rx->Wait(100'000'000);                             // parks on a futex until a command arrives
//
// Delivery: each sender's commands arrive in the order sent, at least once. The bus lives in shared memory,
// so commands survive the crash of any sender; the receiver takes a command off only after its visitor
// returned, so a receiver killed while acting leaves that command to the next one (command handlers are
// idempotent). Sends never block on a slow receiver past the send timeout: they fail with Unavailable.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ipc/status.h"
#include "schemas/commands_generated.h"
#include "store/types.h"

namespace hfe::handlers {

struct CommandBusOptions {
  uint64_t ring_capacity = 4096;  // commands per sender ring (a power of two); used when the bus is created
  int64_t send_timeout_ms = 2000;  // how long Send waits while the ring is full
};

// Finishes `b` (holding a command body of `type` at `body`) as a Command and returns its bytes.
std::span<const uint8_t> FinishCommand(flatbuffers::FlatBufferBuilder& b, schema::CommandBody type,
                                       flatbuffers::Offset<void> body, const store::EventId& correlation,
                                       uint64_t causation_position);
// "StartProvisioningCommand" for a command type, "Unknown" otherwise.
const char* CommandTypeName(schema::CommandBody type);

// Where the workflow handlers put their commands: the bus (CommandSender), or a fake in tests.
class CommandSink {
 public:
  virtual ~CommandSink() = default;
  virtual Status Send(std::span<const uint8_t> command) = 0;
};

struct BusState;

class CommandSender : public CommandSink {
 public:
  static Result<std::unique_ptr<CommandSender>> Open(const std::string& store_dir, const CommandBusOptions& o = {});
  ~CommandSender();  // gives the sender slot back
  CommandSender(const CommandSender&) = delete;
  CommandSender& operator=(const CommandSender&) = delete;

  // Puts one finished Command on the bus. InvalidArgument when it is larger than a slot; Unavailable when the
  // ring stayed full for the send timeout (no receiver, or one that does not keep up).
  Status Send(std::span<const uint8_t> command) override;

 private:
  explicit CommandSender(std::unique_ptr<BusState> s);
  std::unique_ptr<BusState> s_;
};

class CommandReceiver {
 public:
  // FailedPrecondition when another live process is the receiver.
  static Result<std::unique_ptr<CommandReceiver>> Open(const std::string& store_dir, const CommandBusOptions& o = {});
  ~CommandReceiver();  // gives the receiver lease back
  CommandReceiver(const CommandReceiver&) = delete;
  CommandReceiver& operator=(const CommandReceiver&) = delete;

  using Visitor = std::function<void(const schema::Command&)>;
  // Hands up to `max` commands (verified) to `visit`, taking each off the bus once `visit` returned; returns
  // how many it took.
  // A slot that is not a valid Command (the memory is shared, hence untrusted) is counted and dropped.
  size_t Receive(const Visitor& visit, size_t max);
  // Parks until a sender rings the doorbell or `timeout_ns` passes.
  void Wait(int64_t timeout_ns);
  uint64_t rejected() const;

 private:
  explicit CommandReceiver(std::unique_ptr<BusState> s);
  std::unique_ptr<BusState> s_;
};

struct CommandBusInfo {
  bool exists = false;
  pid_t receiver_pid = 0;       // 0: no live receiver
  uint64_t received = 0;        // taken off the bus, over all receivers
  uint64_t pending = 0;         // on the rings now
  struct Sender { pid_t pid; bool alive; uint64_t pushed; uint64_t full; uint64_t pending; };
  std::vector<Sender> senders;  // slots ever used
};
// What the bus of a store holds now (for `hostfactory debug-events --store-health`); exists is false when
// the store has no bus yet.
Result<CommandBusInfo> InspectCommandBus(const std::string& store_dir);

}  // namespace hfe::handlers
