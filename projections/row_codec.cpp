#include "projections/row_codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <algorithm>

#include "events/capnp_values.h"
#include "projections/rows.capnp.h"

namespace subledger {

namespace {

namespace r = rows;

// A member added to one of these structs must be added to rows.capnp and below, or the rows
// silently lose it (the projections test compares a round trip with a full replay).
static_assert(sizeof(Subscription) == 336, "Subscription changed: update its row encoding");
static_assert(sizeof(ChargeLine) == 184, "ChargeLine changed: update its row encoding");

using capnp_values::data;
using capnp_values::str;
using capnp_values::text;

// What is wrong with a row; thrown by the readers below and turned into nullopt by unpack(), like
// a Cap'n Proto error. Each field a later step REQUIRES to be valid (a date given to calendar
// arithmetic, an enum switched on, the exponent of a power of ten) is checked here, so a damaged
// row is "not such a row" and never an assert or undefined behaviour.
struct Malformed {};

Date date(int32_t days) {
  auto d = Date::from_stored_days(days);
  if (!d) throw Malformed{};
  return *d;
}

template <typename Enum>
Enum enum_value(uint8_t v, Enum last) {
  if (v > static_cast<uint8_t>(last)) throw Malformed{};
  return static_cast<Enum>(v);
}

// SHA-256 digests: 32 bytes (or none, where the field may be absent).
std::string digest(capnp::Data::Reader d, bool may_be_empty) {
  if (d.size() != 32 && !(may_be_empty && d.size() == 0)) throw Malformed{};
  return str(d);
}

// Money formatting takes 10^digits and prices are in 10^-6: exponents 0..6 only.
int8_t currency_digits(int8_t v) {
  if (v < 0 || v > 6) throw Malformed{};
  return v;
}

std::string pack(capnp::MessageBuilder& message) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, message);
  auto bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

template <typename Root, typename Read>
auto unpack(std::string_view bytes, Read read)
    -> std::optional<decltype(read(std::declval<typename Root::Reader>()))> {
  try {
    kj::ArrayInputStream in(kj::ArrayPtr<const kj::byte>(
        reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    capnp::ReaderOptions options;
    // The reader allocates the message size its header claims before reading it, and a packed
    // byte stands for at most 128 words (a zero run: 2 bytes, up to 256 words). So a limit of 128
    // words per stored byte never refuses an honest row, and a damaged header cannot make us
    // allocate gigabytes; an honest reader visits each word once, so traversal stays bounded too.
    options.traversalLimitInWords = std::min<uint64_t>(1ull << 30, 128 * bytes.size() + 64);
    capnp::PackedMessageReader reader(in, options);
    return read(reader.getRoot<Root>());
  } catch (const kj::Exception&) {
    return std::nullopt;
  } catch (const Malformed&) {
    return std::nullopt;
  }
}

void write(r::Term::Builder b, const Term& t) {
  b.setStart(t.start.days());
  b.setAnchor(t.anchor.days());
  b.setEnd(t.end.days());
  b.setPriceMicros(t.price_micros);
  if (!t.promotion_id.empty()) b.setPromotionId(text(t.promotion_id));
  b.setPercentOff(static_cast<uint8_t>(t.percent_off));
}

Term read(r::Term::Reader t) {
  Term term{date(t.getStart()),   date(t.getAnchor()),    date(t.getEnd()),
            t.getPriceMicros(),   str(t.getPromotionId()), t.getPercentOff()};
  if (term.percent_off > 100) throw Malformed{};
  // A trial's row has no term yet; a paid term has make_term's invariants (month arithmetic on it
  // REQUIRES an anchor on day 1..28).
  if (!term.anchor.is_none() && term.anchor.day() > kLastSafeDay) throw Malformed{};
  return term;
}

void write(r::Subscription::Builder b, const Subscription& s) {
  b.setId(text(s.id));
  b.setCustomerId(text(s.customer_id));
  b.setOfferId(text(s.offer_id));
  b.setParentId(text(s.parent_id));
  b.setCurrency(text(s.currency));
  b.setStatus(static_cast<uint8_t>(s.status));
  b.setFrequency(static_cast<uint8_t>(s.frequency));
  b.setSeats(s.seats);
  write(b.initTerm(), s.term);
  b.setPaid(s.paid);
  b.setAutoRenew(s.auto_renew);
  b.setCancelledInTrial(s.cancelled_in_trial);
  b.setCreatedOn(s.created_on.days());
  b.setTrialEnd(s.trial_end.days());
  b.setCancelledOn(s.cancelled_on.days());
  b.setExpiredOn(s.expired_on.days());
  b.setLastEventDate(s.last_event_date.days());
  b.setVersion(s.version);
  b.setTermEventSeq(s.term_event_seq);
  b.setNextCycle(s.next_cycle.days());
  b.setTermNetMinor(s.term_net_minor);
  b.setTermLinesStart(s.term_lines_start.days());
  b.setTermLinesEnd(s.term_lines_end.days());
  b.setCurrencyDigits(s.currency_digits);
  b.setOrdinal(s.ordinal);
  if (!s.status_marks.empty()) {
    auto marks = b.initStatusMarks(static_cast<unsigned>(s.status_marks.size()));
    for (unsigned i = 0; i < s.status_marks.size(); ++i) {
      marks[i].setDate(s.status_marks[i].date.days());
      marks[i].setStatus(static_cast<uint8_t>(s.status_marks[i].status));
      marks[i].setCancelledOn(s.status_marks[i].cancelled_on.days());
    }
  }
}

Subscription read(r::Subscription::Reader b) {
  Subscription s;
  s.id = str(b.getId());
  s.customer_id = str(b.getCustomerId());
  s.offer_id = str(b.getOfferId());
  s.parent_id = str(b.getParentId());
  s.currency = str(b.getCurrency());
  s.status = enum_value(b.getStatus(), Status::kExpired);
  s.frequency = enum_value(b.getFrequency(), Frequency::kAnnual);
  s.seats = b.getSeats();
  s.term = read(b.getTerm());
  s.paid = b.getPaid();
  s.auto_renew = b.getAutoRenew();
  s.cancelled_in_trial = b.getCancelledInTrial();
  s.created_on = date(b.getCreatedOn());
  s.trial_end = date(b.getTrialEnd());
  s.cancelled_on = date(b.getCancelledOn());
  s.expired_on = date(b.getExpiredOn());
  s.last_event_date = date(b.getLastEventDate());
  s.version = b.getVersion();
  s.term_event_seq = b.getTermEventSeq();
  s.next_cycle = date(b.getNextCycle());
  s.term_net_minor = b.getTermNetMinor();
  s.term_lines_start = date(b.getTermLinesStart());
  s.term_lines_end = date(b.getTermLinesEnd());
  s.currency_digits = currency_digits(b.getCurrencyDigits());
  s.ordinal = b.getOrdinal();
  for (auto m : b.getStatusMarks())
    s.status_marks.push_back(StatusMark{date(m.getDate()), enum_value(m.getStatus(), Status::kExpired),
                                        date(m.getCancelledOn())});
  return s;
}

void write(r::ChargeLine::Builder b, const ChargeLine& l) {
  b.setSubscriptionId(text(l.subscription_id));
  b.setOfferId(text(l.offer_id));
  b.setType(static_cast<uint8_t>(l.type));
  b.setPeriodStart(l.period_start.days());
  b.setPeriodEnd(l.period_end.days());
  b.setChargeDate(l.charge_date.days());
  b.setSeats(l.seats);
  b.setUnitPriceMicros(l.unit_price_micros);
  b.setAmountMinor(l.amount_minor);
  b.setFrequency(static_cast<uint8_t>(l.frequency));
  b.setEventSeq(l.event_seq);
  b.setOrderInEvent(l.order_in_event);
  b.setFormula(static_cast<uint8_t>(l.formula));
  b.setQuantity(l.quantity);
  b.setCurrencyDigits(l.currency_digits);
  b.setNegated(l.negated);
  b.setReversedNetMinor(l.reversed_net_minor);
  if (!l.promotion_id.empty()) b.setPromotionId(text(l.promotion_id));
  b.setPercentOff(l.percent_off);
}

ChargeLine read(r::ChargeLine::Reader b) {
  ChargeLine l;
  l.subscription_id = str(b.getSubscriptionId());
  l.offer_id = str(b.getOfferId());
  l.type = enum_value(b.getType(), ChargeType::kActivation);
  l.period_start = date(b.getPeriodStart());
  l.period_end = date(b.getPeriodEnd());
  l.charge_date = date(b.getChargeDate());
  l.seats = b.getSeats();
  l.unit_price_micros = b.getUnitPriceMicros();
  l.amount_minor = b.getAmountMinor();
  l.frequency = enum_value(b.getFrequency(), Frequency::kAnnual);
  l.event_seq = b.getEventSeq();
  l.order_in_event = b.getOrderInEvent();
  l.formula = enum_value(b.getFormula(), FormulaKind::kReversal);
  l.quantity = b.getQuantity();
  l.currency_digits = currency_digits(b.getCurrencyDigits());
  l.negated = b.getNegated();
  l.reversed_net_minor = b.getReversedNetMinor();
  l.promotion_id = str(b.getPromotionId());
  l.percent_off = b.getPercentOff();
  if (l.percent_off > 100) throw Malformed{};
  return l;
}

void write(capnp::List<r::ChargeLine>::Builder b, const std::vector<ChargeLine>& lines) {
  for (unsigned i = 0; i < lines.size(); ++i) write(b[i], lines[i]);
}

std::vector<ChargeLine> read(capnp::List<r::ChargeLine>::Reader list) {
  std::vector<ChargeLine> out;
  out.reserve(list.size());
  for (auto l : list) out.push_back(read(l));
  return out;
}

template <typename Container>
void write_texts(capnp::List<capnp::Text>::Builder b, const Container& values) {
  unsigned i = 0;
  for (const auto& v : values) b.set(i++, text(v));
}

}  // namespace

std::string encode_subscription(const Subscription& sub) {
  capnp::MallocMessageBuilder message(64);
  write(message.initRoot<r::Subscription>(), sub);
  return pack(message);
}

std::optional<Subscription> decode_subscription(std::string_view bytes) {
  return unpack<r::Subscription>(bytes, [](r::Subscription::Reader b) { return read(b); });
}

std::optional<SubscriptionDue> decode_subscription_due(std::string_view bytes) {
  return unpack<r::Subscription>(bytes, [](r::Subscription::Reader b) {
    SubscriptionDue out;
    out.id = str(b.getId());
    out.customer_id = str(b.getCustomerId());
    out.offer_id = str(b.getOfferId());
    out.ordinal = b.getOrdinal();
    out.status = enum_value(b.getStatus(), Status::kExpired);
    out.trial_end = date(b.getTrialEnd());
    out.term_end = date(b.getTerm().getEnd());
    out.last_event_date = date(b.getLastEventDate());
    return out;
  });
}

std::string encode_issued_invoice(const IssuedInvoice& issued) {
  capnp::MallocMessageBuilder message(256);
  auto b = message.initRoot<r::Invoice>();
  const Invoice& inv = issued.invoice;
  b.setInvoiceId(text(inv.invoice_id));
  b.setPartnerId(text(inv.partner_id));
  b.setCustomerId(text(inv.customer_id));
  b.setInvoiceDate(inv.invoice_date.days());
  b.setCurrency(text(inv.currency));
  b.setCurrencyDigits(static_cast<int8_t>(inv.currency_digits));
  b.setTotalMinor(inv.total_minor);
  b.setLineCount(inv.line_count);
  write(b.initLines(static_cast<unsigned>(inv.lines.size())), inv.lines);
  b.setLinesSha256(data(inv.lines_sha256));
  b.setEventSeq(issued.event_seq);
  b.setChainHead(data(issued.chain_head));
  return pack(message);
}

std::optional<IssuedInvoice> decode_issued_invoice(std::string_view bytes) {
  return unpack<r::Invoice>(bytes, [](r::Invoice::Reader b) {
    IssuedInvoice out;
    Invoice& inv = out.invoice;
    inv.invoice_id = str(b.getInvoiceId());
    inv.partner_id = str(b.getPartnerId());
    inv.customer_id = str(b.getCustomerId());
    inv.invoice_date = date(b.getInvoiceDate());
    inv.currency = str(b.getCurrency());
    inv.currency_digits = currency_digits(b.getCurrencyDigits());
    inv.total_minor = b.getTotalMinor();
    inv.line_count = b.getLineCount();
    inv.lines = read(b.getLines());
    inv.lines_sha256 = digest(b.getLinesSha256(), false);
    out.event_seq = b.getEventSeq();
    out.chain_head = digest(b.getChainHead(), true);
    return out;
  });
}

std::string encode_customer(const Customer& c, uint64_t version, uint32_t subscription_count,
                            uint32_t pending_count, uint64_t next_line) {
  capnp::MallocMessageBuilder message(128);
  auto b = message.initRoot<r::Customer>();
  const CustomerCreated& d = c.def;
  b.setCustomerId(text(d.customer_id));
  b.setPartnerId(text(d.partner_id));
  b.setCountry(text(d.country));
  b.setCurrency(text(d.currency));
  b.setCompanyName(text(d.company_name));
  b.setOrganizationRegistrationNumber(text(d.organization_registration_number));
  b.setPhone(text(d.phone));
  b.setMiddleName(text(d.middle_name));
  b.setSegment(static_cast<uint8_t>(d.segment));
  write_texts(b.initTrialOffers(static_cast<unsigned>(c.trial_offers.size())), c.trial_offers);
  b.setVersion(version);
  b.setSubscriptionCount(subscription_count);
  b.setPendingCount(pending_count);
  b.setNextLine(next_line);
  if (!c.agreements.empty()) {
    auto list = b.initAgreements(static_cast<unsigned>(c.agreements.size()));
    for (unsigned i = 0; i < c.agreements.size(); ++i) {
      const Agreement& a = c.agreements[i];
      list[i].setAgreementType(text(a.agreement_type));
      list[i].setDateAgreed(a.date_agreed.days());
      list[i].setFirstName(text(a.first_name));
      list[i].setLastName(text(a.last_name));
      list[i].setEmail(text(a.email));
      list[i].setEventSeq(a.event_seq);
    }
  }
  return pack(message);
}

std::optional<CustomerRow> decode_customer(std::string_view bytes) {
  return unpack<r::Customer>(bytes, [](r::Customer::Reader b) {
    CustomerRow out;
    CustomerCreated& d = out.customer.def;
    d.customer_id = str(b.getCustomerId());
    d.partner_id = str(b.getPartnerId());
    d.country = str(b.getCountry());
    d.currency = str(b.getCurrency());
    d.company_name = str(b.getCompanyName());
    d.organization_registration_number = str(b.getOrganizationRegistrationNumber());
    d.phone = str(b.getPhone());
    d.middle_name = str(b.getMiddleName());
    d.segment = enum_value(b.getSegment(), Segment::kNonprofit);
    // The lists of format 4 and before are rows of their own now: a row holding them is not one
    // of this format's.
    if (b.hasSubscriptions() || b.hasPending()) throw Malformed{};
    for (auto s : b.getTrialOffers()) out.customer.trial_offers.insert(str(s));
    out.version = b.getVersion();
    out.subscription_count = b.getSubscriptionCount();
    out.pending_count = b.getPendingCount();
    out.next_line = b.getNextLine();
    if (out.pending_count > out.next_line) throw Malformed{};
    for (auto a : b.getAgreements())
      out.customer.agreements.push_back(Agreement{str(a.getAgreementType()),
                                                  Date::from_days(a.getDateAgreed()),
                                                  str(a.getFirstName()), str(a.getLastName()),
                                                  str(a.getEmail()), a.getEventSeq()});
    return out;
  });
}

std::string encode_charge_line(const ChargeLine& line) {
  capnp::MallocMessageBuilder message(64);
  write(message.initRoot<r::ChargeLine>(), line);
  return pack(message);
}

std::optional<ChargeLine> decode_charge_line(std::string_view bytes) {
  return unpack<r::ChargeLine>(bytes, [](r::ChargeLine::Reader b) { return read(b); });
}

std::optional<Date> decode_charge_line_date(std::string_view bytes) {
  return unpack<r::ChargeLine>(bytes,
                               [](r::ChargeLine::Reader b) { return date(b.getChargeDate()); });
}

std::optional<std::string> decode_customer_partner(std::string_view bytes) {
  return unpack<r::Customer>(bytes, [](r::Customer::Reader b) {
    if (b.hasSubscriptions() || b.hasPending()) throw Malformed{};  // as decode_customer
    return str(b.getPartnerId());
  });
}

}  // namespace subledger
