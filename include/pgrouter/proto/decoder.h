// Incremental framing of the PostgreSQL v3 message stream: given the bytes received so
// far, say whether a whole message is there, how long it is, or why the stream is broken.
// Lengths are checked before anything is allocated and nothing past the buffer is read;
// the decoder itself never allocates except to word an error.
#pragma once

#include <cstdint>
#include <string_view>

#include "pgrouter/proto/message.h"

namespace pgrouter::proto {

// Per-class length limits for client messages (each counts the length word itself).
struct DecodeLimits {
    std::uint32_t data = kDefaultDataMessageLimit;  // Query, Parse, Bind, FunctionCall, CopyData
    std::uint32_t control = kSmallMessageLimit;     // Sync, Flush, Execute, Describe, Close...
    std::uint32_t auth = kAuthMessageLimit;         // PasswordMessage / SASL responses
};

// The limit that applies to a client message type, or 0 for a type a client never sends.
[[nodiscard]] std::uint32_t frontend_length_limit(char type, const DecodeLimits& limits);

// Frames one client message at the start of `buf`. Unknown types and lengths outside
// [4, limit] are errors (08P01, PostgreSQL's wording).
[[nodiscard]] DecodeResult decode_frontend(std::string_view buf, const DecodeLimits& limits = {});

// The bytes at the start of `buf` that are whole client Copy messages (CopyData, CopyDone,
// CopyFail) one after another, at most `cap` of them (but at least the first whole one):
// what can go to the backend in one write. 0 when `buf` does not start with one.
[[nodiscard]] std::size_t copy_messages_run(std::string_view buf, std::size_t cap);

// Whether `type` is a message type a PostgreSQL server sends (protocol 3.0).
[[nodiscard]] bool known_backend_type(char type);

// Frames one server message at the start of `buf`; a type no server sends, and lengths
// outside [4, max_length], are errors.
[[nodiscard]] DecodeResult decode_backend(std::string_view buf,
                                          std::uint32_t max_length = kDefaultDataMessageLimit);

}  // namespace pgrouter::proto
