// RejectionCode: the closed set of stable codes a command can be rejected with (INTERFACE.md,
// BILLING_RULES 10, SERVER.md), each with its HTTP status in one table. decide() can only reject
// with a member of this enum, and the server maps a code to its status only through
// http_status_of_code(), so a new code cannot be added without its status.
// Pure values and functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace subledger {

enum class RejectionCode : uint8_t {
  kInvalidArgument,
  kAlreadyExists,
  kIdempotencyConflict,
  kAgreementAlreadyAccepted,
  kUnknownPartner,
  kUnknownCustomer,
  kUnknownOffer,
  kUnknownSubscription,
  kUnknownCountry,
  kUnknownCurrency,
  kNotFound,
  kUnavailable,
  kDateBeforeBillingClock,
  kDateBeforeLastEvent,
  kInvalidRegistrationNumber,
  kPhoneRequired,
  kNoPrice,
  kInvalidSeats,
  kSeatsAboveOfferMax,
  kOfferLimitReached,
  kOfferAlreadyOwned,
  kTrialNotEligible,
  kTrialAlreadyUsed,
  kTrialExpired,
  kTrialSeatsFixed,
  kNotATrial,
  kInvalidState,
  kRetentionWindowPassed,
  kParentRequired,
  kParentNotActive,
  kAddonFrequencyMismatch,
  kAmountOutOfRange,
  kOfferRetired,          // BILLING_RULES 13
  kNotAvailableInMarket,  // BILLING_RULES 13
  kSegmentNotEligible,    // BILLING_RULES 13
};

// The code as printed on result lines and in the server's errors: "INVALID_ARGUMENT".
std::string_view code_name(RejectionCode code);
// SERVER.md "Errors": 400, 404, 409, 422 or 503.
int http_status(RejectionCode code);
// The member named `name`, or nullopt.
std::optional<RejectionCode> code_named(std::string_view name);
// The HTTP status of a code by name; a name outside the set (a defect) is 500.
int http_status_of_code(std::string_view name);

}  // namespace subledger
