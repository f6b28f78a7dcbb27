// The one place that pulls in Boost.Asio with C++20 coroutines. <utility> and <coroutine>
// must precede Asio's headers for Boost 1.74 with GCC 12 and clang 14.
#pragma once

// GCC 12 reports a false -Wmismatched-new-delete inside Asio's coroutine frame allocator
// (its operator new/delete pair is matched; GCC bug 109224). Off for files using Asio.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// clang-format off
#include <utility>
#include <coroutine>
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgrouter {
namespace asio = boost::asio;
using asio::ip::tcp;
}  // namespace pgrouter
