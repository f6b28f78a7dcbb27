// A client session: the PostgreSQL front door (startup packet, HBA, authentication),
// the backend login on the client's behalf, cancel requests, and then the exchange of
// messages with the backend. One coroutine per client on its worker's event loop.
#pragma once

#include "pgrouter/base/asio.h"
#include "pgrouter/worker/worker_env.h"

namespace pgrouter {

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env);

}  // namespace pgrouter
