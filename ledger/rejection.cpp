#include "ledger/rejection.h"

#include <array>
#include <cassert>

namespace subledger {

namespace {

constexpr int kBadRequest = 400, kNotFoundStatus = 404, kConflict = 409, kUnprocessable = 422,
              kServiceUnavailable = 503, kInternal = 500;

struct CodeEntry {
  RejectionCode code;
  std::string_view name;
  int http_status;
};

// The one table: every member of RejectionCode, in enum order (checked below).
constexpr std::array kCodes{
    CodeEntry{RejectionCode::kInvalidArgument, "INVALID_ARGUMENT", kBadRequest},
    CodeEntry{RejectionCode::kAlreadyExists, "ALREADY_EXISTS", kConflict},
    CodeEntry{RejectionCode::kIdempotencyConflict, "IDEMPOTENCY_CONFLICT", kConflict},
    CodeEntry{RejectionCode::kAgreementAlreadyAccepted, "AGREEMENT_ALREADY_ACCEPTED", kConflict},
    CodeEntry{RejectionCode::kUnknownPartner, "UNKNOWN_PARTNER", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnknownCustomer, "UNKNOWN_CUSTOMER", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnknownOffer, "UNKNOWN_OFFER", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnknownSubscription, "UNKNOWN_SUBSCRIPTION", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnknownCountry, "UNKNOWN_COUNTRY", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnknownCurrency, "UNKNOWN_CURRENCY", kNotFoundStatus},
    CodeEntry{RejectionCode::kNotFound, "NOT_FOUND", kNotFoundStatus},
    CodeEntry{RejectionCode::kUnavailable, "UNAVAILABLE", kServiceUnavailable},
    CodeEntry{RejectionCode::kDateBeforeBillingClock, "DATE_BEFORE_BILLING_CLOCK", kUnprocessable},
    CodeEntry{RejectionCode::kDateBeforeLastEvent, "DATE_BEFORE_LAST_EVENT", kUnprocessable},
    CodeEntry{RejectionCode::kInvalidRegistrationNumber, "INVALID_REGISTRATION_NUMBER",
              kUnprocessable},
    CodeEntry{RejectionCode::kPhoneRequired, "PHONE_REQUIRED", kUnprocessable},
    CodeEntry{RejectionCode::kNoPrice, "NO_PRICE", kUnprocessable},
    CodeEntry{RejectionCode::kInvalidSeats, "INVALID_SEATS", kUnprocessable},
    CodeEntry{RejectionCode::kSeatsAboveOfferMax, "SEATS_ABOVE_OFFER_MAX", kUnprocessable},
    CodeEntry{RejectionCode::kOfferLimitReached, "OFFER_LIMIT_REACHED", kUnprocessable},
    CodeEntry{RejectionCode::kOfferAlreadyOwned, "OFFER_ALREADY_OWNED", kUnprocessable},
    CodeEntry{RejectionCode::kTrialNotEligible, "TRIAL_NOT_ELIGIBLE", kUnprocessable},
    CodeEntry{RejectionCode::kTrialAlreadyUsed, "TRIAL_ALREADY_USED", kUnprocessable},
    CodeEntry{RejectionCode::kTrialExpired, "TRIAL_EXPIRED", kUnprocessable},
    CodeEntry{RejectionCode::kTrialSeatsFixed, "TRIAL_SEATS_FIXED", kUnprocessable},
    CodeEntry{RejectionCode::kNotATrial, "NOT_A_TRIAL", kUnprocessable},
    CodeEntry{RejectionCode::kInvalidState, "INVALID_STATE", kUnprocessable},
    CodeEntry{RejectionCode::kRetentionWindowPassed, "RETENTION_WINDOW_PASSED", kUnprocessable},
    CodeEntry{RejectionCode::kParentRequired, "PARENT_REQUIRED", kUnprocessable},
    CodeEntry{RejectionCode::kParentNotActive, "PARENT_NOT_ACTIVE", kUnprocessable},
    CodeEntry{RejectionCode::kAddonFrequencyMismatch, "ADDON_FREQUENCY_MISMATCH", kUnprocessable},
    CodeEntry{RejectionCode::kAmountOutOfRange, "AMOUNT_OUT_OF_RANGE", kUnprocessable},
    CodeEntry{RejectionCode::kOfferRetired, "OFFER_RETIRED", kUnprocessable},
    CodeEntry{RejectionCode::kNotAvailableInMarket, "NOT_AVAILABLE_IN_MARKET", kUnprocessable},
    CodeEntry{RejectionCode::kSegmentNotEligible, "SEGMENT_NOT_ELIGIBLE", kUnprocessable},
};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < kCodes.size(); ++i)
    if (static_cast<size_t>(kCodes[i].code) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kCodes must list every RejectionCode once, in enum order");
static_assert(kCodes.size() == static_cast<size_t>(RejectionCode::kSegmentNotEligible) + 1,
              "a RejectionCode without its entry in kCodes");

}  // namespace

std::string_view code_name(RejectionCode code) { return kCodes[static_cast<size_t>(code)].name; }

int http_status(RejectionCode code) { return kCodes[static_cast<size_t>(code)].http_status; }

std::optional<RejectionCode> code_named(std::string_view name) {
  for (const auto& entry : kCodes)
    if (entry.name == name) return entry.code;
  return std::nullopt;
}

int http_status_of_code(std::string_view name) {
  auto code = code_named(name);
  return code ? http_status(*code) : kInternal;
}

}  // namespace subledger
