// Bounds-checked reading of v3 message bodies (see payload.h). Parsers return views into
// the caller's payload, except ErrorFields, which owns its strings.
#include "pgrouter/proto/payload.h"

namespace pgrouter::proto {

bool PayloadReader::fail() {
    ok_ = false;
    pos_ = data_.size();
    return false;
}

bool PayloadReader::read_u8(std::uint8_t& v) {
    if (remaining() < 1) return fail();
    v = static_cast<std::uint8_t>(data_[pos_++]);
    return true;
}

bool PayloadReader::read_i16(std::int16_t& v) {
    if (remaining() < 2) return fail();
    const auto* u = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    v = static_cast<std::int16_t>((std::uint16_t{u[0]} << 8) | u[1]);
    pos_ += 2;
    return true;
}

bool PayloadReader::read_i32(std::int32_t& v) {
    if (remaining() < 4) return fail();
    v = static_cast<std::int32_t>(read_be32(data_.data() + pos_));
    pos_ += 4;
    return true;
}

bool PayloadReader::read_cstr(std::string_view& v) {
    std::size_t nul = data_.find('\0', pos_);
    if (nul == std::string_view::npos) return fail();
    v = data_.substr(pos_, nul - pos_);
    pos_ = nul + 1;
    return true;
}

bool PayloadReader::read_bytes(std::size_t n, std::string_view& v) {
    if (remaining() < n) return fail();
    v = data_.substr(pos_, n);
    pos_ += n;
    return true;
}

std::string_view ErrorFields::get(ErrorField field) const {
    switch (field) {
        case ErrorField::Severity:
            return severity;
        case ErrorField::SeverityNonLocalized:
            return severity_nonlocalized;
        case ErrorField::Code:
            return sqlstate;
        case ErrorField::Message:
            return message;
        case ErrorField::Detail:
            return detail;
        case ErrorField::Hint:
            return hint;
        default:
            break;
    }
    for (const auto& [type, value] : other) {
        if (type == static_cast<char>(field)) return value;
    }
    return {};
}

std::optional<ErrorFields> parse_error_fields(std::string_view payload) {
    PayloadReader r(payload);
    ErrorFields f;
    for (;;) {
        std::uint8_t type = 0;
        if (!r.read_u8(type)) return std::nullopt;
        if (type == 0) break;
        std::string_view value;
        if (!r.read_cstr(value)) return std::nullopt;
        switch (static_cast<ErrorField>(type)) {
            case ErrorField::Severity:
                f.severity = value;
                break;
            case ErrorField::SeverityNonLocalized:
                f.severity_nonlocalized = value;
                break;
            case ErrorField::Code:
                f.sqlstate = value;
                break;
            case ErrorField::Message:
                f.message = value;
                break;
            case ErrorField::Detail:
                f.detail = value;
                break;
            case ErrorField::Hint:
                f.hint = value;
                break;
            default:
                f.other.emplace_back(static_cast<char>(type), std::string(value));
                break;
        }
    }
    if (!r.at_end()) return std::nullopt;
    return f;
}

std::optional<AuthRequest> parse_authentication(std::string_view payload) {
    PayloadReader r(payload);
    std::int32_t code = 0;
    if (!r.read_i32(code)) return std::nullopt;
    AuthRequest req{static_cast<AuthCode>(code), r.rest()};
    switch (req.code) {
        case AuthCode::MD5Password:
            if (req.data.size() != 4) return std::nullopt;
            break;
        case AuthCode::Ok:
        case AuthCode::CleartextPassword:
            if (!req.data.empty()) return std::nullopt;
            break;
        default:
            break;
    }
    return req;
}

std::optional<std::vector<std::string_view>> parse_sasl_mechanisms(std::string_view data) {
    PayloadReader r(data);
    std::vector<std::string_view> mechs;
    for (;;) {
        std::string_view m;
        if (!r.read_cstr(m)) return std::nullopt;
        if (m.empty()) break;
        mechs.push_back(m);
    }
    if (!r.at_end()) return std::nullopt;
    return mechs;
}

std::optional<SaslInitialResponse> parse_sasl_initial_response(std::string_view payload) {
    PayloadReader r(payload);
    SaslInitialResponse resp;
    std::int32_t len = 0;
    if (!r.read_cstr(resp.mechanism) || !r.read_i32(len)) return std::nullopt;
    if (len == -1) {
        if (!r.at_end()) return std::nullopt;
        return resp;
    }
    if (len < 0 || static_cast<std::size_t>(len) != r.remaining()) return std::nullopt;
    resp.data = r.rest();
    return resp;
}

std::optional<std::string_view> parse_password_message(std::string_view payload) {
    PayloadReader r(payload);
    std::string_view pw;
    if (!r.read_cstr(pw) || !r.at_end()) return std::nullopt;
    return pw;
}

std::optional<ParameterStatus> parse_parameter_status(std::string_view payload) {
    PayloadReader r(payload);
    ParameterStatus ps;
    if (!r.read_cstr(ps.name) || !r.read_cstr(ps.value) || !r.at_end()) return std::nullopt;
    return ps;
}

std::optional<BackendKeyData> parse_backend_key_data(std::string_view payload) {
    PayloadReader r(payload);
    BackendKeyData k;
    if (!r.read_i32(k.pid) || !r.read_i32(k.key) || !r.at_end()) return std::nullopt;
    return k;
}

std::optional<TransactionStatus> parse_ready_for_query(std::string_view payload) {
    if (payload.size() != 1) return std::nullopt;
    auto s = static_cast<TransactionStatus>(payload[0]);
    switch (s) {
        case TransactionStatus::Idle:
        case TransactionStatus::InTransaction:
        case TransactionStatus::Failed:
            return s;
    }
    return std::nullopt;
}

bool result_shape(std::string_view row_description, std::string& shape) {
    PayloadReader r(row_description);
    std::int16_t columns = 0;
    if (!r.read_i16(columns) || columns < 0) return false;
    shape.assign(row_description.substr(0, 2));
    for (int i = 0; i < columns; ++i) {
        std::string_view name, fixed, format;
        // name; table OID, column number, type OID, type size, type modifier; format code
        if (!r.read_cstr(name) || !r.read_bytes(4 + 2 + 4 + 2 + 4, fixed) ||
            !r.read_bytes(2, format)) {
            return false;
        }
        shape.append(name).push_back('\0');
        shape.append(fixed);
    }
    return r.at_end();
}

std::optional<std::string_view> parse_data_row_first(std::string_view payload) {
    PayloadReader r(payload);
    std::int16_t columns = 0;
    std::int32_t size = 0;
    std::string_view value;
    if (!r.read_i16(columns) || columns < 1 || !r.read_i32(size) || size < 0 ||
        !r.read_bytes(static_cast<std::size_t>(size), value)) {
        return std::nullopt;
    }
    return value;
}

std::optional<NegotiateProtocolVersion> parse_negotiate_protocol_version(std::string_view payload) {
    PayloadReader r(payload);
    std::int32_t version = 0;
    std::int32_t count = 0;
    if (!r.read_i32(version) || !r.read_i32(count) || count < 0) return std::nullopt;
    // Each name takes at least one byte: a count above the remaining size is a lie.
    if (static_cast<std::size_t>(count) > r.remaining()) return std::nullopt;
    NegotiateProtocolVersion npv;
    npv.version = static_cast<std::uint32_t>(version);
    npv.unsupported_options.reserve(static_cast<std::size_t>(count));
    for (std::int32_t i = 0; i < count; ++i) {
        std::string_view name;
        if (!r.read_cstr(name)) return std::nullopt;
        npv.unsupported_options.push_back(name);
    }
    if (!r.at_end()) return std::nullopt;
    return npv;
}

}  // namespace pgrouter::proto
