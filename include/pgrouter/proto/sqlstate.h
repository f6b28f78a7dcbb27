// Every SQLSTATE pgrouter sends or acts on, by PostgreSQL's condition names (Appendix A of
// the PostgreSQL documentation). Nothing else in the tree spells a five-character code.
#pragma once

#include <string_view>

namespace pgrouter::proto {

inline constexpr std::string_view kSqlstateInvalidParameterValue = "22023";
inline constexpr std::string_view kSqlstateInvalidName = "42602";
inline constexpr std::string_view kSqlstateUndefinedObject = "42704";
inline constexpr std::string_view kSqlstateCantChangeRuntimeParam = "55P02";
inline constexpr std::string_view kSqlstateReadOnlySqlTransaction = "25006";
inline constexpr std::string_view kSqlstateInvalidAuthorization = "28000";
inline constexpr std::string_view kSqlstateInvalidPassword = "28P01";
inline constexpr std::string_view kSqlstateConnectionFailure = "08006";
inline constexpr std::string_view kSqlstateProtocolViolation = "08P01";
inline constexpr std::string_view kSqlstateFeatureNotSupported = "0A000";
inline constexpr std::string_view kSqlstateObjectNotInPrerequisiteState = "55000";
inline constexpr std::string_view kSqlstateTooManyConnections = "53300";
inline constexpr std::string_view kSqlstateAdminShutdown = "57P01";
inline constexpr std::string_view kSqlstateCannotConnectNow = "57P03";
inline constexpr std::string_view kSqlstateInternalError = "XX000";

}  // namespace pgrouter::proto
