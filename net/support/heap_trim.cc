#include "net/support/heap_trim.h"

#include <malloc.h>

#include <utility>

namespace mesh::net {

void HeapTrimmer::Start(uv_loop_t* loop) {
  // Setting it at all turns glibc's dynamic threshold off (mallopt(3)).
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  started_ = true;
}

void HeapTrimmer::NoteApplied() {
  ++applied_;
  if (started_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
    quiet_checks_ = 0;
    uv_timer_start(&timer_, OnTimer, kCheckMs, kCheckMs);
  }
}

void HeapTrimmer::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<HeapTrimmer*>(timer->data);
  self->quiet_checks_ = self->applied_ == 0 ? self->quiet_checks_ + 1 : 0;
  self->applied_ = 0;
  struct mallinfo2 info = mallinfo2();
  if (info.fordblks >= kMinFreeBytes && info.fordblks >= info.uordblks / 4) {
    malloc_trim(0);
    ++self->trims_;
  }
  if (self->quiet_checks_ >= kQuietChecks) uv_timer_stop(timer);
}

void HeapTrimmer::Close(std::function<void()> done) {
  close_done_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<HeapTrimmer*>(h->data);
    self->started_ = false;
    auto done = std::move(self->close_done_);
    if (done) done();
  });
}

}  // namespace mesh::net
