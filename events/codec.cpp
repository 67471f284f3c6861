#include "events/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "events/capnp_values.h"
#include "events/events.capnp.h"
#include "events/hash.h"

namespace subledger {

namespace {

namespace s = schema;

using capnp_values::data;
using capnp_values::str;
using capnp_values::text;

void write_term(s::Term::Builder b, const Term& t) {
  b.setStart(t.start.yyyymmdd());
  b.setAnchor(t.anchor.yyyymmdd());
  b.setEnd(t.end.yyyymmdd());
  b.setPriceMicros(t.price_micros);
  if (!t.promotion_id.empty()) b.setPromotionId(text(t.promotion_id));
  b.setPercentOff(static_cast<uint8_t>(t.percent_off));
}

void write_texts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, text(values[i]));
}

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.push_back(str(t));
  return out;
}

// What is wrong with a decoded value; thrown by the readers below, caught in decode() and returned
// as its error. Every field that a later step would REQUIRE to be valid (a date given to calendar
// arithmetic, an enum switched on, a day of month) is checked here, at the boundary, so that a
// damaged or hostile value is an error and never reaches an assert or undefined behaviour.
struct Malformed {
  std::string what;
};

Date read_date(uint32_t packed, const char* field) {
  auto d = Date::from_stored_yyyymmdd(packed);
  if (!d)
    throw Malformed{std::string("invalid ") + field + " date " + std::to_string(packed) +
                    " (want YYYYMMDD of a real day in years " +
                    std::to_string(Date::kMinStoredYear) + ".." +
                    std::to_string(Date::kMaxStoredYear) + ", or 0 for none)"};
  return *d;
}

Date read_required_date(uint32_t packed, const char* field) {
  Date d = read_date(packed, field);
  if (d.is_none()) throw Malformed{std::string("missing ") + field + " date"};
  return d;
}

// Fixed-size digests: 32 bytes, or (where the field may be absent) none.
std::string read_digest(capnp::Data::Reader d, const char* field, bool may_be_empty) {
  if (d.size() == kEventHashBytes || (may_be_empty && d.size() == 0)) return str(d);
  throw Malformed{std::string(field) + " has " + std::to_string(d.size()) +
                  " bytes, want " + std::to_string(kEventHashBytes)};
}

Term read_term(s::Term::Reader r) {
  Term t{read_required_date(r.getStart(), "term start"),
         read_required_date(r.getAnchor(), "term anchor"),
         read_required_date(r.getEnd(), "term end"),
         r.getPriceMicros(),
         str(r.getPromotionId()),
         r.getPercentOff()};
  // The line formula REQUIRES a percentage of 1..100 exactly when a promotion is named.
  if (t.percent_off > 100 || (t.percent_off == 0) != t.promotion_id.empty())
    throw Malformed{"term promotion '" + t.promotion_id + "' with " +
                    std::to_string(t.percent_off) + "% off (want an id with 1..100, or neither)"};
  // make_term's invariants, which month arithmetic on the term REQUIRES (date.h).
  if (t.anchor < t.start || t.end <= t.anchor)
    throw Malformed{"term dates out of order (start " + t.start.iso() + ", anchor " +
                    t.anchor.iso() + ", end " + t.end.iso() + ")"};
  if (t.anchor.day() > kLastSafeDay) throw Malformed{"term anchor " + t.anchor.iso() + " is after the 28th"};
  return t;
}

s::Frequency to_schema(Frequency f) {
  return f == Frequency::kAnnual ? s::Frequency::ANNUAL : s::Frequency::MONTHLY;
}
Frequency from_schema(s::Frequency f) {
  switch (f) {
    case s::Frequency::MONTHLY:
      return Frequency::kMonthly;
    case s::Frequency::ANNUAL:
      return Frequency::kAnnual;
  }
  throw Malformed{"unknown billing frequency " + std::to_string(static_cast<unsigned>(f))};
}
Segment from_schema(s::Segment v) {
  if (static_cast<unsigned>(v) > static_cast<unsigned>(Segment::kNonprofit))
    throw Malformed{"unknown segment " + std::to_string(static_cast<unsigned>(v))};
  return static_cast<Segment>(v);
}
StreamKind from_schema(s::StreamKind v) {
  if (static_cast<unsigned>(v) > static_cast<unsigned>(StreamKind::kPromotion))
    throw Malformed{"unknown stream kind " + std::to_string(static_cast<unsigned>(v))};
  return static_cast<StreamKind>(v);
}

struct PayloadWriter {
  s::Event::Payload::Builder p;
  void operator()(const PartnerRegistered& e) {
    auto b = p.initPartnerRegistered();
    b.setPartnerId(text(e.partner_id));
    b.setCountry(text(e.country));
    b.setCurrency(text(e.currency));
    b.setBillingDay(static_cast<uint8_t>(e.billing_day));
  }
  void operator()(const CustomerCreated& e) {
    auto b = p.initCustomerCreated();
    b.setCustomerId(text(e.customer_id));
    b.setPartnerId(text(e.partner_id));
    b.setCountry(text(e.country));
    b.setCurrency(text(e.currency));
    b.setCompanyName(text(e.company_name));
    b.setOrganizationRegistrationNumber(text(e.organization_registration_number));
    b.setPhone(text(e.phone));
    b.setMiddleName(text(e.middle_name));
    b.setSegment(static_cast<s::Segment>(e.segment));
  }
  void operator()(const OfferDefined& e) {
    auto b = p.initOfferDefined();
    b.setOfferId(text(e.offer_id));
    b.setName(text(e.name));
    b.setSegment(static_cast<s::Segment>(e.segment));
    b.setTrialEligible(e.trial_eligible);
    auto list = b.initAddonOf(static_cast<unsigned>(e.addon_of.size()));
    for (unsigned i = 0; i < e.addon_of.size(); ++i) list.set(i, text(e.addon_of[i]));
    b.setMaxSeats(e.max_seats);
    b.setMaxPerCustomer(e.max_per_customer);
    write_texts(b.initMarkets(static_cast<unsigned>(e.markets.size())), e.markets);
    b.setTermMonths(static_cast<uint8_t>(e.term_months));
  }
  void operator()(const PromotionDefined& e) {
    auto b = p.initPromotionDefined();
    b.setPromotionId(text(e.promotion_id));
    write_texts(b.initOfferIds(static_cast<unsigned>(e.offer_ids.size())), e.offer_ids);
    b.setPercentOff(static_cast<uint8_t>(e.percent_off));
    b.setPurchaseFrom(e.purchase_from.yyyymmdd());
    b.setPurchaseTo(e.purchase_to.yyyymmdd());
    b.setAppliesToNew(e.applies_to_new);
    b.setAppliesToRenewal(e.applies_to_renewal);
    write_texts(b.initMarkets(static_cast<unsigned>(e.markets.size())), e.markets);
    b.setMaxSeats(e.max_seats);
    b.setNewCustomerOnly(e.new_customer_only);
    write_texts(b.initExcludeOffers(static_cast<unsigned>(e.exclude_offers.size())),
                e.exclude_offers);
    b.setExcludeCancelDays(static_cast<uint16_t>(e.exclude_cancel_days));
  }
  void operator()(const OfferRetired& e) {
    auto b = p.initOfferRetired();
    b.setOfferId(text(e.offer_id));
    b.setRetiredOn(e.retired_on.yyyymmdd());
  }
  void operator()(const CustomerUpdated& e) {
    auto b = p.initCustomerUpdated();
    b.setCustomerId(text(e.customer_id));
    b.setCompanyName(text(e.company_name));
    b.setOrganizationRegistrationNumber(text(e.organization_registration_number));
    b.setPhone(text(e.phone));
    b.setMiddleName(text(e.middle_name));
    b.setSegment(static_cast<s::Segment>(e.segment));
  }
  void operator()(const PricePublished& e) {
    auto b = p.initPricePublished();
    b.setOfferId(text(e.offer_id));
    b.setCurrency(text(e.currency));
    b.setMonthlyPriceMicros(e.monthly_price_micros);
    b.setEffectiveFrom(e.effective_from.yyyymmdd());
  }
  void operator()(const SubscriptionCreated& e) {
    auto b = p.initSubscriptionCreated();
    b.setSubscriptionId(text(e.subscription_id));
    b.setCustomerId(text(e.customer_id));
    b.setOfferId(text(e.offer_id));
    b.setParentSubscriptionId(text(e.parent_subscription_id));
    b.setSeats(e.seats);
    b.setFrequency(to_schema(e.frequency));
    write_term(b.initTerm(), e.term);
    b.setCurrency(text(e.currency));
  }
  void operator()(const TrialStarted& e) {
    auto b = p.initTrialStarted();
    b.setSubscriptionId(text(e.subscription_id));
    b.setCustomerId(text(e.customer_id));
    b.setOfferId(text(e.offer_id));
    b.setSeats(e.seats);
    b.setTrialEnd(e.trial_end.yyyymmdd());
  }
  void operator()(const TrialConverted& e) {
    auto b = p.initTrialConverted();
    b.setSubscriptionId(text(e.subscription_id));
    b.setFrequency(to_schema(e.frequency));
    write_term(b.initTerm(), e.term);
    b.setCurrency(text(e.currency));
  }
  void operator()(const TrialExpired& e) {
    p.initTrialExpired().setSubscriptionId(text(e.subscription_id));
  }
  void operator()(const SeatsChanged& e) {
    auto b = p.initSeatsChanged();
    b.setSubscriptionId(text(e.subscription_id));
    b.setOldSeats(e.old_seats);
    b.setNewSeats(e.new_seats);
  }
  void operator()(const SubscriptionCancelled& e) {
    auto b = p.initSubscriptionCancelled();
    b.setSubscriptionId(text(e.subscription_id));
    b.setCascadedFrom(text(e.cascaded_from));
  }
  void operator()(const SubscriptionReactivated& e) {
    p.initSubscriptionReactivated().setSubscriptionId(text(e.subscription_id));
  }
  void operator()(const AutoRenewSet& e) {
    auto b = p.initAutoRenewSet();
    b.setSubscriptionId(text(e.subscription_id));
    b.setEnabled(e.enabled);
  }
  void operator()(const SubscriptionRenewed& e) {
    auto b = p.initSubscriptionRenewed();
    b.setSubscriptionId(text(e.subscription_id));
    b.setManual(e.manual);
    write_term(b.initTerm(), e.term);
  }
  void operator()(const SubscriptionExpired& e) {
    p.initSubscriptionExpired().setSubscriptionId(text(e.subscription_id));
  }
  void operator()(const AgreementAccepted& e) {
    auto b = p.initAgreementAccepted();
    b.setCustomerId(text(e.customer_id));
    b.setAgreementType(text(e.agreement_type));
    b.setDateAgreed(e.date_agreed.yyyymmdd());
    b.setFirstName(text(e.first_name));
    b.setLastName(text(e.last_name));
    b.setEmail(text(e.email));
  }
  void operator()(const BillingRun& e) {
    auto b = p.initBillingRun();
    b.setThrough(e.through.yyyymmdd());
    b.setPreviousClock(e.previous_clock.yyyymmdd());
    b.setInvoicesIssued(e.invoices_issued);
  }
  void operator()(const InvoiceIssued& e) {
    auto b = p.initInvoiceIssued();
    b.setInvoiceId(text(e.invoice_id));
    b.setCustomerId(text(e.customer_id));
    b.setPartnerId(text(e.partner_id));
    b.setInvoiceDate(e.invoice_date.yyyymmdd());
    b.setCurrency(text(e.currency));
    b.setTotalMinor(e.total_minor);
    b.setLineCount(e.line_count);
    b.setLinesSha256(data(e.lines_sha256));
    b.setChainHead(data(e.chain_head));
  }
};

EventPayload read_payload(s::Event::Payload::Reader p) {
  switch (p.which()) {
    case s::Event::Payload::PARTNER_REGISTERED: {
      auto r = p.getPartnerRegistered();
      // billing_run REQUIRES a day that exists in every month (BILLING_RULES: 1..28).
      if (r.getBillingDay() < 1 || r.getBillingDay() > kLastSafeDay)
        throw Malformed{"billing day " + std::to_string(r.getBillingDay()) + " is not 1..28"};
      return PartnerRegistered{str(r.getPartnerId()), str(r.getCountry()), str(r.getCurrency()),
                               r.getBillingDay()};
    }
    case s::Event::Payload::CUSTOMER_CREATED: {
      auto r = p.getCustomerCreated();
      return CustomerCreated{str(r.getCustomerId()),
                             str(r.getPartnerId()),
                             str(r.getCountry()),
                             str(r.getCurrency()),
                             str(r.getCompanyName()),
                             str(r.getOrganizationRegistrationNumber()),
                             str(r.getPhone()),
                             str(r.getMiddleName()),
                             from_schema(r.getSegment())};
    }
    case s::Event::Payload::OFFER_DEFINED: {
      auto r = p.getOfferDefined();
      OfferDefined e{str(r.getOfferId()),
                     str(r.getName()),
                     from_schema(r.getSegment()),
                     r.getTrialEligible(),
                     {},
                     r.getMaxSeats(),
                     r.getMaxPerCustomer(),
                     read_texts(r.getMarkets()),
                     // Older events have no term length: theirs is the default.
                     r.getTermMonths() == 0 ? kDefaultTermMonths : r.getTermMonths()};
      for (auto t : r.getAddonOf()) e.addon_of.push_back(str(t));
      if (e.term_months != kDefaultTermMonths && e.term_months != kLongTermMonths)
        throw Malformed{"term of " + std::to_string(e.term_months) + " months (want 12 or 36)"};
      return e;
    }
    case s::Event::Payload::PROMOTION_DEFINED: {
      auto r = p.getPromotionDefined();
      PromotionDefined e;
      e.promotion_id = str(r.getPromotionId());
      e.offer_ids = read_texts(r.getOfferIds());
      e.percent_off = r.getPercentOff();
      e.purchase_from = read_required_date(r.getPurchaseFrom(), "purchase_from");
      e.purchase_to = read_required_date(r.getPurchaseTo(), "purchase_to");
      e.applies_to_new = r.getAppliesToNew();
      e.applies_to_renewal = r.getAppliesToRenewal();
      e.markets = read_texts(r.getMarkets());
      e.max_seats = r.getMaxSeats();
      e.new_customer_only = r.getNewCustomerOnly();
      e.exclude_offers = read_texts(r.getExcludeOffers());
      e.exclude_cancel_days = r.getExcludeCancelDays();
      if (e.percent_off < 1 || e.percent_off > 100)
        throw Malformed{"promotion percent_off " + std::to_string(e.percent_off) + " not 1..100"};
      if (e.exclude_cancel_days > kExcludeCancelDaysMax)
        throw Malformed{"promotion exclude_cancel_days above " +
                        std::to_string(kExcludeCancelDaysMax)};
      return e;
    }
    case s::Event::Payload::OFFER_RETIRED: {
      auto r = p.getOfferRetired();
      return OfferRetired{str(r.getOfferId()), read_required_date(r.getRetiredOn(), "retired")};
    }
    case s::Event::Payload::CUSTOMER_UPDATED: {
      auto r = p.getCustomerUpdated();
      return CustomerUpdated{str(r.getCustomerId()),
                             str(r.getCompanyName()),
                             str(r.getOrganizationRegistrationNumber()),
                             str(r.getPhone()),
                             str(r.getMiddleName()),
                             from_schema(r.getSegment())};
    }
    case s::Event::Payload::PRICE_PUBLISHED: {
      auto r = p.getPricePublished();
      return PricePublished{str(r.getOfferId()), str(r.getCurrency()), r.getMonthlyPriceMicros(),
                            read_required_date(r.getEffectiveFrom(), "effective_from")};
    }
    case s::Event::Payload::SUBSCRIPTION_CREATED: {
      auto r = p.getSubscriptionCreated();
      return SubscriptionCreated{
          str(r.getSubscriptionId()),       str(r.getCustomerId()), str(r.getOfferId()),
          str(r.getParentSubscriptionId()), r.getSeats(),           from_schema(r.getFrequency()),
          read_term(r.getTerm()),           str(r.getCurrency())};
    }
    case s::Event::Payload::TRIAL_STARTED: {
      auto r = p.getTrialStarted();
      return TrialStarted{str(r.getSubscriptionId()), str(r.getCustomerId()), str(r.getOfferId()),
                          r.getSeats(), read_required_date(r.getTrialEnd(), "trial end")};
    }
    case s::Event::Payload::TRIAL_CONVERTED: {
      auto r = p.getTrialConverted();
      return TrialConverted{str(r.getSubscriptionId()), from_schema(r.getFrequency()),
                            read_term(r.getTerm()), str(r.getCurrency())};
    }
    case s::Event::Payload::TRIAL_EXPIRED:
      return TrialExpired{str(p.getTrialExpired().getSubscriptionId())};
    case s::Event::Payload::SEATS_CHANGED: {
      auto r = p.getSeatsChanged();
      return SeatsChanged{str(r.getSubscriptionId()), r.getOldSeats(), r.getNewSeats()};
    }
    case s::Event::Payload::SUBSCRIPTION_CANCELLED: {
      auto r = p.getSubscriptionCancelled();
      return SubscriptionCancelled{str(r.getSubscriptionId()), str(r.getCascadedFrom())};
    }
    case s::Event::Payload::SUBSCRIPTION_REACTIVATED:
      return SubscriptionReactivated{str(p.getSubscriptionReactivated().getSubscriptionId())};
    case s::Event::Payload::AUTO_RENEW_SET: {
      auto r = p.getAutoRenewSet();
      return AutoRenewSet{str(r.getSubscriptionId()), r.getEnabled()};
    }
    case s::Event::Payload::SUBSCRIPTION_RENEWED: {
      auto r = p.getSubscriptionRenewed();
      return SubscriptionRenewed{str(r.getSubscriptionId()), r.getManual(), read_term(r.getTerm())};
    }
    case s::Event::Payload::SUBSCRIPTION_EXPIRED:
      return SubscriptionExpired{str(p.getSubscriptionExpired().getSubscriptionId())};
    case s::Event::Payload::AGREEMENT_ACCEPTED: {
      auto r = p.getAgreementAccepted();
      return AgreementAccepted{str(r.getCustomerId()),
                               str(r.getAgreementType()),
                               read_required_date(r.getDateAgreed(), "agreed"),
                               str(r.getFirstName()),
                               str(r.getLastName()),
                               str(r.getEmail())};
    }
    case s::Event::Payload::BILLING_RUN: {
      auto r = p.getBillingRun();
      return BillingRun{read_required_date(r.getThrough(), "through"),
                        read_date(r.getPreviousClock(), "previous clock"), r.getInvoicesIssued()};
    }
    case s::Event::Payload::INVOICE_ISSUED: {
      auto r = p.getInvoiceIssued();
      auto hash = r.getLinesSha256();
      auto head = r.getChainHead();
      return InvoiceIssued{str(r.getInvoiceId()),
                           str(r.getCustomerId()),
                           str(r.getPartnerId()),
                           read_required_date(r.getInvoiceDate(), "invoice"),
                           str(r.getCurrency()),
                           r.getTotalMinor(),
                           r.getLineCount(),
                           read_digest(hash, "lines_sha256", false),
                           read_digest(head, "chain_head", true)};
    }
  }
  throw Malformed{"unknown event payload " + std::to_string(static_cast<unsigned>(p.which()))};
}

}  // namespace

absl::Status check_event(const Event& e) {
  if (e.seq == 0) return absl::InvalidArgumentError("sequence number 0");
  if (e.stream_version == 0) return absl::InvalidArgumentError("stream version 0");
  if (e.stream != stream_of(e.payload))
    return absl::InvalidArgumentError("stream does not match payload");
  if (e.request_id.empty()) return absl::InvalidArgumentError("empty request id");
  return absl::OkStatus();
}

std::string encode_event(const Event& e) {
  capnp::MallocMessageBuilder message(256);
  auto b = message.initRoot<s::Event>();
  b.setSeq(e.seq);
  b.setStreamKind(static_cast<s::StreamKind>(e.stream.kind));
  b.setStreamId(text(e.stream.id));
  b.setStreamVersion(e.stream_version);
  b.setEffectiveDate(e.effective_date.yyyymmdd());
  b.setRecordedAtMicros(e.recorded_at_micros);
  b.setActor(text(e.actor));
  b.setRequestId(text(e.request_id));
  std::visit(PayloadWriter{b.initPayload()}, e.payload);
  if (!e.prev_hash.empty()) b.setPrevHash(data(e.prev_hash));
  if (!e.command_hash.empty()) b.setCommandHash(data(e.command_hash));
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  std::string out;
  out.reserve(bytes.size() + kEventHashBytes);
  out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  out += sha256(out);
  return out;
}

std::string_view stored_event_hash(std::string_view stored) {
  return stored.size() < kEventHashBytes ? std::string_view{}
                                         : stored.substr(stored.size() - kEventHashBytes);
}

absl::Status EventDecoder::decode(std::string_view stored, Event& out) {
  if (stored.size() <= kEventHashBytes)
    return absl::DataLossError("stored value too short for an event and its hash");
  std::string_view bytes = stored.substr(0, stored.size() - kEventHashBytes);
  std::string_view trailer = stored_event_hash(stored);
  uint8_t digest[kEventHashBytes];
  sha256_into(bytes, digest);
  if (std::memcmp(digest, trailer.data(), kEventHashBytes) != 0)
    return absl::DataLossError("content does not match its hash (the stored event was altered)");
  if (bytes.size() % sizeof(capnp::word) != 0)
    return absl::DataLossError("stored value is not a whole number of Cap'n Proto words");
  size_t words = bytes.size() / sizeof(capnp::word);
  if (aligned_.size() < words) aligned_.resize(words);
  std::memcpy(aligned_.data(), bytes.data(), bytes.size());
  try {
    // An honest reader visits each word of the message once: a limit proportional to its size
    // bounds what a crafted value can make us allocate (Cap'n Proto counts an empty list element
    // as a word, so a small value cannot claim millions of elements).
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 4 * words + 64;
    capnp::FlatArrayMessageReader reader(
        kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(aligned_.data()),
                                        words),
        options);
    auto r = reader.getRoot<s::Event>();
    out.seq = r.getSeq();
    out.stream = Stream{from_schema(r.getStreamKind()), str(r.getStreamId())};
    out.stream_version = r.getStreamVersion();
    out.effective_date = read_date(r.getEffectiveDate(), "effective");
    out.recorded_at_micros = r.getRecordedAtMicros();
    out.actor = str(r.getActor());
    out.request_id = str(r.getRequestId());
    out.payload = read_payload(r.getPayload());
    out.prev_hash = read_digest(r.getPrevHash(), "prev_hash", true);
    out.command_hash = read_digest(r.getCommandHash(), "command_hash", true);
    out.hash.assign(trailer);
  } catch (const kj::Exception& ex) {
    return absl::DataLossError(std::string("malformed event: ") + ex.getDescription().cStr());
  } catch (const Malformed& m) {
    return absl::DataLossError("malformed event: " + m.what);
  }
  if (absl::Status bad = check_event(out); !bad.ok()) return absl::DataLossError(bad.message());
  return absl::OkStatus();
}

absl::Status at_event(uint64_t seq, const absl::Status& status) {
  return absl::Status(status.code(), "event " + std::to_string(seq) + ": " +
                                         std::string(status.message()));
}

}  // namespace subledger
