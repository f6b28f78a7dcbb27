// The watcher process: the only writer of backend health in shared memory. Until health
// checking lands (issue 3) it only waits, so every backend shows STARTING and connection
// routing uses the first configured backend.
#include <unistd.h>

#include <boost/date_time/posix_time/posix_time_types.hpp>

#include "pgrouter/child.h"
#include "pgrouter/signals.h"

namespace pgrouter {

void run_watcher(const ChildContext& ctx) {
    if (ctx.listen_fd >= 0) close(ctx.listen_fd);
    if (ctx.monitor_fd >= 0) close(ctx.monitor_fd);
    install_stop_handler();
    while (!stop_requested()) {
        auto deadline = boost::posix_time::microsec_clock::universal_time() +
                        boost::posix_time::milliseconds(500);
        try {
            (void)ctx.segment->recheck.timed_wait(deadline);
        } catch (const boost::interprocess::interprocess_exception&) {
            // EINTR from the stop signal: the loop condition decides.
        }
    }
    _exit(0);
}

}  // namespace pgrouter
