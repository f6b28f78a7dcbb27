// Script steps and server messages for the fake backend, built with pgrouter's encoder.
#include "fake_script.h"

#include "pgrouter/proto/encoder.h"

namespace pgrouter::test::fake {

namespace {

using proto::BackendMsg;
using proto::MessageBuilder;

constexpr std::int32_t kTextOid = 25;

}  // namespace

Step expect(std::string types, std::string contains) {
    Step s;
    s.kind = Step::Kind::Expect;
    s.types = std::move(types);
    s.contains = std::move(contains);
    return s;
}

Step expect_query(std::string sql) { return expect("Q", std::move(sql)); }

Step send(std::string bytes) { return send_split(std::move(bytes), 0); }

Step send_split(std::string bytes, std::size_t chunk, std::chrono::milliseconds delay) {
    Step s;
    s.kind = Step::Kind::Send;
    s.bytes = std::move(bytes);
    s.chunk = chunk;
    s.delay = delay;
    return s;
}

Step pause(std::chrono::milliseconds delay) {
    Step s;
    s.kind = Step::Kind::Pause;
    s.delay = delay;
    return s;
}

Step close_now() {
    Step s;
    s.kind = Step::Kind::Close;
    return s;
}

Step wait_gate(std::string name) {
    Step s;
    s.kind = Step::Kind::Gate;
    s.types = std::move(name);
    return s;
}

Step serve() { return Step{}; }

std::string row_description(const std::vector<std::string>& columns) {
    std::string out;
    MessageBuilder b(out, BackendMsg::RowDescription);
    b.i16(static_cast<std::int16_t>(columns.size()));
    for (const std::string& name : columns) {
        b.cstr(name).i32(0).i16(0).i32(kTextOid).i16(-1).i32(-1).i16(0);
    }
    b.finish();
    return out;
}

std::string data_row(const std::vector<std::string>& values) {
    std::string out;
    MessageBuilder b(out, BackendMsg::DataRow);
    b.i16(static_cast<std::int16_t>(values.size()));
    for (const std::string& v : values) b.i32(static_cast<std::int32_t>(v.size())).bytes(v);
    b.finish();
    return out;
}

std::string command_complete(const std::string& tag) {
    std::string out;
    MessageBuilder(out, BackendMsg::CommandComplete).cstr(tag);
    return out;
}

std::string ready(char status) {
    std::string out;
    proto::encode_ready_for_query(out, static_cast<proto::TransactionStatus>(status));
    return out;
}

std::string error(const std::string& sqlstate, const std::string& message,
                  const std::string& severity) {
    std::string out;
    proto::encode_error_response(out, severity, sqlstate, message);
    return out;
}

std::string notice(const std::string& message) {
    std::string out;
    proto::encode_notice_response(out, "NOTICE", "00000", message);
    return out;
}

std::string notification(std::int32_t pid, const std::string& channel, const std::string& payload) {
    std::string out;
    MessageBuilder(out, BackendMsg::NotificationResponse).i32(pid).cstr(channel).cstr(payload);
    return out;
}

std::string parameter_status(const std::string& name, const std::string& value) {
    std::string out;
    proto::encode_parameter_status(out, name, value);
    return out;
}

std::string parse_complete() { return message('1', ""); }
std::string bind_complete() { return message('2', ""); }
std::string no_data() { return message('n', ""); }

std::string message(char type, const std::string& payload) {
    std::string out;
    MessageBuilder(out, static_cast<BackendMsg>(type)).bytes(payload);
    return out;
}

std::string rows(const std::vector<std::string>& values) {
    std::string out = row_description({"?column?"});
    for (const std::string& v : values) out += data_row({v});
    return out + command_complete("SELECT " + std::to_string(values.size()));
}

std::string select_answer(const std::vector<std::string>& values, char status) {
    return rows(values) + ready(status);
}

std::string bound_answer(const std::string& value, char status) {
    return bind_complete() + data_row({value}) + command_complete("SELECT 1") + ready(status);
}

std::string echo_answer(const std::string& sql, char status) {
    return row_description({"echo"}) + data_row({sql}) + command_complete("SELECT 1") +
           ready(status);
}

}  // namespace pgrouter::test::fake
