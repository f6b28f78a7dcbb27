// Connection-level routing: a client connection relayed byte for byte to the backend the
// shared table names master (the foundation's router, until the protocol front door).
#pragma once

#include "pgrouter/asio.h"
#include "pgrouter/shm_layout.h"

namespace pgrouter {

asio::awaitable<void> relay_session(tcp::socket client, Segment& seg, WorkerSlot& slot);

}  // namespace pgrouter
