// Fault injection for crash tests: a process-wide hook called at named points of the append and resolve
// paths. Null in production (one relaxed load and a predictable branch); tests install a hook that SIGKILLs
// the process at a chosen point to prove recovery from every intermediate state.
#pragma once

#include <atomic>

namespace hfe::store::internal {

enum class FaultPoint {
  kAfterClaim,           // frame claimed (in progress), body not written
  kAfterBody,            // body and CRC written, not committed
  kAfterCommit,          // committed, not resolved
  kResolverAfterVerdict, // a frame's verdict written, its tables not applied
  kResolverAfterJournal, // a run's journal written, none of its frames decided
  kResolverMidApply,     // stream table applied, dedup index half applied
  kResolverMidRun,       // a frame of a run decided and applied, the next not yet, the watermark not moved
  kGroupDispatch,        // a consumer group's dispatcher holds the dispatch lock and is about to push work
  kGroupCreated,         // a new group's file is published, its subscription slot not yet
};

using FaultHook = void (*)(FaultPoint);
inline std::atomic<FaultHook> g_fault_hook{nullptr};

inline void Fault(FaultPoint p) {
  if (FaultHook h = g_fault_hook.load(std::memory_order_relaxed)) h(p);
}

}  // namespace hfe::store::internal
