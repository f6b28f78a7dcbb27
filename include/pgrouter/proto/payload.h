// Reading the bodies of v3 messages: a bounds-checked reader over a payload view and
// parsers for the messages the front door must understand (authentication requests and
// ErrorResponse from backends, SASL and password answers from clients). Every parser
// returns std::nullopt on a malformed body and never reads outside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgrouter/proto/message.h"

namespace pgrouter::proto {

// Sequential big-endian reads; a read that does not fit fails and leaves the reader at
// its end, so a chain of reads can be checked once with ok().
class PayloadReader {
  public:
    explicit PayloadReader(std::string_view payload) : data_(payload) {}

    [[nodiscard]] bool read_u8(std::uint8_t& v);
    [[nodiscard]] bool read_i16(std::int16_t& v);
    [[nodiscard]] bool read_i32(std::int32_t& v);
    // A NUL-terminated string (the NUL is consumed, not returned).
    [[nodiscard]] bool read_cstr(std::string_view& v);
    [[nodiscard]] bool read_bytes(std::size_t n, std::string_view& v);

    std::size_t remaining() const { return data_.size() - pos_; }
    bool at_end() const { return pos_ == data_.size(); }
    bool ok() const { return ok_; }
    std::string_view rest() const { return data_.substr(pos_); }

  private:
    bool fail();
    std::string_view data_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

// ErrorResponse / NoticeResponse fields. The common ones are named; the rest are kept in
// order of arrival.
struct ErrorFields {
    std::string severity;               // S (localized)
    std::string severity_nonlocalized;  // V
    std::string sqlstate;               // C
    std::string message;                // M
    std::string detail;                 // D
    std::string hint;                   // H
    std::vector<std::pair<char, std::string>> other;

    // The value of a field given by type, "" when absent.
    std::string_view get(ErrorField field) const;
};

[[nodiscard]] std::optional<ErrorFields> parse_error_fields(std::string_view payload);

// Authentication request: `data` is the 4-byte salt for MD5Password, the mechanism list for
// SASL (see parse_sasl_mechanisms), the SASL data for SASLContinue / SASLFinal, else empty.
struct AuthRequest {
    AuthCode code = AuthCode::Ok;
    std::string_view data;
};
[[nodiscard]] std::optional<AuthRequest> parse_authentication(std::string_view payload);
[[nodiscard]] std::optional<std::vector<std::string_view>> parse_sasl_mechanisms(
    std::string_view data);

// SASLInitialResponse: `data` is absent when the client sent length -1.
struct SaslInitialResponse {
    std::string_view mechanism;
    std::optional<std::string_view> data;
};
[[nodiscard]] std::optional<SaslInitialResponse> parse_sasl_initial_response(
    std::string_view payload);

// PasswordMessage: one NUL-terminated string filling the payload exactly.
[[nodiscard]] std::optional<std::string_view> parse_password_message(std::string_view payload);

struct ParameterStatus {
    std::string_view name;
    std::string_view value;
};
[[nodiscard]] std::optional<ParameterStatus> parse_parameter_status(std::string_view payload);

struct BackendKeyData {
    std::int32_t pid = 0;
    std::int32_t key = 0;
};
[[nodiscard]] std::optional<BackendKeyData> parse_backend_key_data(std::string_view payload);

[[nodiscard]] std::optional<TransactionStatus> parse_ready_for_query(std::string_view payload);

// A RowDescription's columns without their format codes (which a Describe of a portal sets
// and one of a statement leaves at text): what "the statement's result type" means when
// PostgreSQL checks that a cached plan did not change it, written into `shape` (whose
// capacity is reused: this runs for every described result). False when malformed.
[[nodiscard]] bool result_shape(std::string_view row_description, std::string& shape);

// The first column of a DataRow, in the text it carries; nullopt for a NULL or a malformed row.
[[nodiscard]] std::optional<std::string_view> parse_data_row_first(std::string_view payload);

struct NegotiateProtocolVersion {
    std::uint32_t version = 0;
    std::vector<std::string_view> unsupported_options;
};
[[nodiscard]] std::optional<NegotiateProtocolVersion> parse_negotiate_protocol_version(
    std::string_view payload);

}  // namespace pgrouter::proto
