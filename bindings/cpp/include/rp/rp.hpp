// rp.hpp -- header-only C++17 wrapper over librp's C API (rp.h).
//
// - Namespace rp. Each owned handle is a move-only class over std::unique_ptr with a deleter
//   calling the matching rp_*_free; capi() exposes the C handle and release() gives it up.
//   Mux (a shared handle in C) is copyable: a copy takes a reference with rp_mux_clone.
// - A failing call throws rp::Error (status + rp_last_error_message), or rp::Refused for
//   RP_STATUS_REFUSED (code, reason, retry hint, details). Expected non-events (a timeout, a
//   partial frame) return std::optional or a count of 0 instead.
// - Callbacks accept any callable. It is moved into a heap box passed to librp as user_data and
//   destroyed by the user_data_free librp calls, so its lifetime follows librp's. Trampolines
//   are noexcept: no exception ever reaches C. What an exception becomes is said per callback:
//   a failure reply or a rejection when the peer can be told, otherwise it is rethrown from the
//   wrapper of the librp call that ran the callback (callbacks run on that call's thread).
// - Thread safety is librp's: const methods map to functions taking `const rp_x *`.
#ifndef RP_RP_HPP
#define RP_RP_HPP

#include <rp.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace rp {

// ----------------------------------------------------------------------------------------------
// Errors
// ----------------------------------------------------------------------------------------------

namespace detail {

/// "status word: message", with the status word once: librp's messages often start with it.
inline std::string describe(rp_status status, const std::string &message) {
    std::string word = rp_status_str(static_cast<int32_t>(status));
    if (message.empty()) return word;
    bool has_word = message.compare(0, word.size(), word) == 0 &&
                    (message.size() == word.size() || message[word.size()] == ':' ||
                     message[word.size()] == ' ' || message[word.size()] == '(');
    return has_word ? message : word + ": " + message;
}

}  // namespace detail

/// A failed librp call: its status and the message librp recorded for it. what() names the
/// status once, followed by the message.
class Error : public std::runtime_error {
public:
    Error(rp_status status, const std::string &message)
        : std::runtime_error(detail::describe(status, message)), status_(status), message_(message) {}
    /// The librp status code.
    rp_status status() const noexcept { return status_; }
    /// librp's message, without the status name.
    const std::string &message() const noexcept { return message_; }

private:
    rp_status status_;
    std::string message_;
};

/// A server's refusal (RP_STATUS_REFUSED).
class Refused : public Error {
public:
    Refused(const std::string &message, int32_t code, std::string reason,
            std::chrono::milliseconds retry_after,
            std::vector<std::pair<std::string, std::string>> details)
        : Error(RP_STATUS_REFUSED, message), code_(code), reason_(std::move(reason)),
          retry_after_(retry_after), details_(std::move(details)) {}
    /// One of rp_error_code (newer servers may send others).
    int32_t code() const noexcept { return code_; }
    const std::string &reason() const noexcept { return reason_; }
    /// 0 = no hint.
    std::chrono::milliseconds retry_after() const noexcept { return retry_after_; }
    const std::vector<std::pair<std::string, std::string>> &details() const noexcept {
        return details_;
    }

private:
    int32_t code_;
    std::string reason_;
    std::chrono::milliseconds retry_after_;
    std::vector<std::pair<std::string, std::string>> details_;
};

/// A borrowed byte range; who owns the bytes is said wherever one is returned. Every call
/// that takes bytes takes a Bytes, so it accepts a std::string, a std::string_view, a string
/// literal (its bytes, without the NUL), a std::vector<std::uint8_t> or a pointer and length;
/// the bytes must outlive the Bytes (a temporary passed to a call lives long enough).
struct Bytes {
    const std::uint8_t *data = nullptr;
    std::size_t size = 0;

    Bytes() = default;
    Bytes(const std::uint8_t *d, std::size_t n) noexcept : data(d), size(n) {}
    Bytes(const std::vector<std::uint8_t> &v) noexcept : data(v.data()), size(v.size()) {}
    Bytes(std::string_view s) noexcept
        : data(reinterpret_cast<const std::uint8_t *>(s.data())), size(s.size()) {}
    Bytes(const std::string &s) noexcept : Bytes(std::string_view(s)) {}
    Bytes(const char *s) noexcept : Bytes(s ? std::string_view(s) : std::string_view()) {}
    const std::uint8_t *begin() const noexcept { return data; }
    const std::uint8_t *end() const noexcept { return data + size; }
    bool empty() const noexcept { return size == 0; }
    std::string_view str() const noexcept {
        return std::string_view(reinterpret_cast<const char *>(data), size);
    }
    std::vector<std::uint8_t> to_vector() const { return std::vector<std::uint8_t>(begin(), end()); }
};

namespace detail {

inline std::string last_error_message() {
    std::size_t n = rp_last_error_message(nullptr, 0);
    std::string s(n + 1, '\0');
    rp_last_error_message(&s[0], s.size());
    s.resize(n);
    return s;
}

inline std::string_view view(rp_str s) noexcept {
    return s.len == 0 ? std::string_view() : std::string_view(s.ptr, s.len);
}

inline Bytes view(rp_bytes b) noexcept { return Bytes(b.ptr, b.len); }

/// Throws the error of the call that just returned `st` on this thread.
[[noreturn]] inline void throw_status(rp_status st) {
    std::string msg = last_error_message();
    if (st == RP_STATUS_REFUSED) {
        rp_refusal *r = nullptr;
        if (rp_last_refusal(&r) == RP_STATUS_OK) {
            std::unique_ptr<rp_refusal, void (*)(rp_refusal *)> guard(r, rp_refusal_free);
            std::vector<std::pair<std::string, std::string>> details;
            for (std::size_t i = 0, n = rp_refusal_detail_count(r); i < n; i++) {
                rp_str k{}, v{};
                if (rp_refusal_detail(r, i, &k, &v) == RP_STATUS_OK)
                    details.emplace_back(std::string(view(k)), std::string(view(v)));
            }
            throw Refused(msg, rp_refusal_code(r), std::string(view(rp_refusal_reason(r))),
                          std::chrono::milliseconds(rp_refusal_retry_after_ms(r)),
                          std::move(details));
        }
    }
    throw Error(st, msg);
}

inline void check(rp_status st) {
    if (st != RP_STATUS_OK) throw_status(st);
}

/// Exceptions escaping a callback wait here until the wrapper of the librp call that ran the
/// callback (on this same thread) rethrows them.
inline std::exception_ptr &pending_exception() noexcept {
    static thread_local std::exception_ptr p;
    return p;
}

inline void stash_exception() noexcept {
    if (!pending_exception()) pending_exception() = std::current_exception();
}

inline void rethrow_pending() {
    if (std::exception_ptr p = std::exchange(pending_exception(), nullptr)) std::rethrow_exception(p);
}

template <class T> void delete_box(void *p) noexcept { delete static_cast<T *>(p); }

template <class T, void (*Free)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T *)> using Owned = std::unique_ptr<T, Deleter<T, Free>>;

inline int32_t to_ms(std::chrono::milliseconds t) noexcept {
    if (t.count() < 0) return -1;
    if (t.count() > INT32_MAX) return INT32_MAX;
    return static_cast<int32_t>(t.count());
}

/// A delay in whole milliseconds for librp's uint32_t delay arguments (negative: 0).
inline std::uint32_t to_delay(std::chrono::milliseconds t) noexcept {
    if (t.count() < 0) return 0;
    if (t.count() > static_cast<std::int64_t>(UINT32_MAX)) return UINT32_MAX;
    return static_cast<std::uint32_t>(t.count());
}

inline const std::uint8_t *ptr_or_null(Bytes b) noexcept { return b.size ? b.data : nullptr; }

/// The bytes of text (PEM, say), NULL when empty.
inline const std::uint8_t *bytes_of(std::string_view s) noexcept {
    return s.empty() ? nullptr : reinterpret_cast<const std::uint8_t *>(s.data());
}

}  // namespace detail

/// Waits forever, for the timeouts below.
inline constexpr std::chrono::milliseconds forever{-1};

// ----------------------------------------------------------------------------------------------
// Frames
// ----------------------------------------------------------------------------------------------

/// One v1 frame with borrowed byte fields (see rp_frame_view).
struct Frame {
    std::uint32_t envelope_version = 1;
    rp_frame_kind kind = RP_FRAME_KIND_REQUEST;
    std::uint32_t payload_protocol = 0;
    rp_payload_encoding payload_encoding = RP_PAYLOAD_ENCODING_NONE;
    std::uint64_t request_id = 0;
    std::uint64_t deadline_unix_ms = 0;
    Bytes payload;
    std::string_view traceparent;
    std::string_view tracestate;

    rp_frame_view to_c() const noexcept {
        rp_frame_view v{};
        v.envelope_version = envelope_version;
        v.kind = static_cast<int32_t>(kind);
        v.payload_protocol = payload_protocol;
        v.payload_encoding = static_cast<int32_t>(payload_encoding);
        v.request_id = request_id;
        v.deadline_unix_ms = deadline_unix_ms;
        v.payload = rp_bytes{detail::ptr_or_null(payload), payload.size};
        v.traceparent = rp_str{traceparent.empty() ? nullptr : traceparent.data(), traceparent.size()};
        v.tracestate = rp_str{tracestate.empty() ? nullptr : tracestate.data(), tracestate.size()};
        return v;
    }
    static Frame from_c(const rp_frame_view &v) noexcept {
        Frame f;
        f.envelope_version = v.envelope_version;
        f.kind = static_cast<rp_frame_kind>(v.kind);
        f.payload_protocol = v.payload_protocol;
        f.payload_encoding = static_cast<rp_payload_encoding>(v.payload_encoding);
        f.request_id = v.request_id;
        f.deadline_unix_ms = v.deadline_unix_ms;
        f.payload = detail::view(v.payload);
        f.traceparent = detail::view(v.traceparent);
        f.tracestate = detail::view(v.tracestate);
        return f;
    }
};

namespace detail {
template <class Enc> void append_encoded(std::vector<std::uint8_t> &out, std::size_t guess, Enc enc) {
    std::size_t old = out.size();
    for (;;) {
        out.resize(old + guess);
        std::size_t n = 0;
        rp_status st = enc(out.data() + old, guess, &n);
        if (st == RP_STATUS_BUFFER_TOO_SMALL && n > guess) {
            guess = n;
            continue;
        }
        if (st != RP_STATUS_OK) {
            out.resize(old);
            throw_status(st);
        }
        out.resize(old + n);
        return;
    }
}
}  // namespace detail

/// Appends the encoded frame (header and body) to `out`.
inline void encode_append(std::vector<std::uint8_t> &out, const Frame &f) {
    rp_frame_view v = f.to_c();
    detail::append_encoded(out, 64 + f.payload.size + f.traceparent.size() + f.tracestate.size(),
                           [&](std::uint8_t *buf, std::size_t cap, std::size_t *n) {
                               return rp_frame_encode(&v, buf, cap, n);
                           });
}

/// The encoded frame.
inline std::vector<std::uint8_t> encode(const Frame &f) {
    std::vector<std::uint8_t> out;
    encode_append(out, f);
    return out;
}

/// The RESPONSE frame answering `request` with `payload`.
inline std::vector<std::uint8_t> encode_response(const Frame &request, Bytes payload) {
    rp_frame_view v = request.to_c();
    std::vector<std::uint8_t> out;
    detail::append_encoded(out, 64 + payload.size + request.traceparent.size() + request.tracestate.size(),
                           [&](std::uint8_t *buf, std::size_t cap, std::size_t *n) {
                               return rp_frame_encode_response(&v, detail::ptr_or_null(payload),
                                                               payload.size, buf, cap, n);
                           });
    return out;
}

/// A decoded frame and the bytes it occupies.
struct Decoded {
    Frame frame;  ///< views into the decoded buffer
    std::size_t length = 0;
};

/// Decodes the frame at the front of `buf`; std::nullopt while the buffer holds only part of
/// one (then `*needed`, if given, receives the total bytes needed). `max_body` 0 means
/// RP_FRAME_MAX_BODY. Throws rp::Error for framing errors (fatal for a connection).
inline std::optional<Decoded> decode(Bytes buf, std::uint32_t max_body = 0, std::size_t *needed = nullptr) {
    rp_frame_view v{};
    std::size_t n = 0;
    rp_status st = rp_frame_decode(detail::ptr_or_null(buf), buf.size, max_body, &v, &n);
    if (st == RP_STATUS_INCOMPLETE) {
        if (needed) *needed = n;
        return std::nullopt;
    }
    detail::check(st);
    return Decoded{Frame::from_c(v), n};
}

// ----------------------------------------------------------------------------------------------
// Daemon identity and mux
// ----------------------------------------------------------------------------------------------

/// A daemon's identity (rp_daemon_identity, exclusive: calls on one object are serialised by
/// the caller).
class DaemonIdentity {
public:
    /// An empty identity to fill with the setters.
    DaemonIdentity() {
        rp_daemon_identity *p = nullptr;
        detail::check(rp_daemon_identity_new(&p));
        p_.reset(p);
    }
    /// The calling process serving `ns`:`path` (flags: 0 or RP_DAEMON_IDENTITY_LEGACY_SHA256).
    static DaemonIdentity current(const std::string &ns, const std::string &path, std::uint32_t flags = 0) {
        rp_daemon_identity *p = nullptr;
        detail::check(rp_daemon_identity_new_current(ns.c_str(), path.c_str(), flags, &p));
        return DaemonIdentity(p);
    }
    DaemonIdentity &pid(std::uint32_t pid) { return set(rp_daemon_identity_set_pid(p_.get(), pid)); }
    DaemonIdentity &exe_path(const std::string &s) { return set(rp_daemon_identity_set_exe_path(p_.get(), s.c_str())); }
    DaemonIdentity &endpoint(const std::string &ns, const std::string &path) {
        return set(rp_daemon_identity_set_endpoint(p_.get(), ns.c_str(), path.c_str()));
    }
    DaemonIdentity &boot_id(const std::string &s) { return set(rp_daemon_identity_set_boot_id(p_.get(), s.c_str())); }
    DaemonIdentity &started_at_unix_ms(std::uint64_t ms) {
        return set(rp_daemon_identity_set_started_at_unix_ms(p_.get(), ms));
    }
    DaemonIdentity &idle_timeout(std::optional<std::chrono::seconds> t) {
        return set(t ? rp_daemon_identity_set_idle_timeout_secs(p_.get(), static_cast<std::uint32_t>(t->count()))
                     : rp_daemon_identity_clear_idle_timeout(p_.get()));
    }
    DaemonIdentity &exe_hash(const std::string &algorithm, Bytes hash) {
        return set(rp_daemon_identity_set_exe_hash(p_.get(), algorithm.c_str(), detail::ptr_or_null(hash), hash.size));
    }
    /// The identity part of a probe reply (what follows the 32-byte nonce echo).
    std::vector<std::uint8_t> encode() const {
        std::vector<std::uint8_t> out;
        detail::append_encoded(out, 256, [&](std::uint8_t *buf, std::size_t cap, std::size_t *n) {
            return rp_daemon_identity_encode(p_.get(), buf, cap, n);
        });
        return out;
    }
    const rp_daemon_identity *capi() const noexcept { return p_.get(); }
    rp_daemon_identity *capi() noexcept { return p_.get(); }
    rp_daemon_identity *release() noexcept { return p_.release(); }

private:
    explicit DaemonIdentity(rp_daemon_identity *p) noexcept : p_(p) {}
    DaemonIdentity &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_daemon_identity, rp_daemon_identity_free> p_;
};

/// The verdict of one Mux::poll.
struct MuxEvent {
    rp_mux_event_kind kind = RP_MUX_EVENT_KIND_NEED_MORE_BYTES;
    std::size_t consumed = 0;  ///< bytes to advance past once handled
    Frame frame;               ///< RP_MUX_EVENT_KIND_PAYLOAD: views into the polled buffer
    /// RP_MUX_EVENT_KIND_PROBE_ANSWERED: the reply to write back. Owned by librp, valid until
    /// the next poll on this thread (with any mux).
    Bytes reply;
};

/// The multiplexer of one backend endpoint (rp_mux, shared: copies share one mux; poll may run
/// on many threads at once).
class Mux {
public:
    /// A mux without a legacy wire (any first byte other than RP_FRAMING_VERSION is legacy).
    Mux(const DaemonIdentity &identity, const std::vector<std::uint32_t> &served) {
        detail::check(rp_mux_new(identity.capi(), served.data(), served.size(), nullptr, nullptr, nullptr, &p_));
    }
    /// A mux with a legacy detector: any callable `rp_legacy_verdict(rp::Bytes buf)`, run inside
    /// poll on the polling thread (concurrently when several threads poll: it must be
    /// thread-safe). An exception from it fails that poll and is rethrown by poll.
    template <class F, class = std::enable_if_t<std::is_invocable_r_v<rp_legacy_verdict, F &, Bytes>>>
    Mux(const DaemonIdentity &identity, const std::vector<std::uint32_t> &served, F &&detect) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(detect));
        // librp owns box on every path (freed from within rp_mux_new on failure).
        detail::check(rp_mux_new(identity.capi(), served.data(), served.size(), &detect_tramp<Fn>, box,
                                 &detail::delete_box<Fn>, &p_));
    }
    Mux(const Mux &o) noexcept : p_(rp_mux_clone(o.p_)) {}
    Mux(Mux &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Mux &operator=(Mux o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~Mux() { rp_mux_free(p_); }

    /// Classifies the front of `buf`. Throws rp::Error for connection-fatal verdicts.
    MuxEvent poll(Bytes buf) const {
        rp_mux_event ev{};
        detail::pending_exception() = nullptr;
        rp_status st = rp_mux_poll(p_, detail::ptr_or_null(buf), buf.size, &ev);
        detail::rethrow_pending();
        detail::check(st);
        MuxEvent out;
        out.kind = ev.kind;
        out.consumed = ev.consumed;
        if (ev.kind == RP_MUX_EVENT_KIND_PAYLOAD) out.frame = Frame::from_c(ev.frame);
        out.reply = detail::view(ev.reply);
        return out;
    }
    const rp_mux *capi() const noexcept { return p_; }

private:
    template <class Fn> static int32_t detect_tramp(void *ud, const std::uint8_t *buf, std::size_t len) noexcept {
        try {
            return static_cast<int32_t>((*static_cast<Fn *>(ud))(Bytes(buf, len)));
        } catch (...) {
            detail::stash_exception();
            return -1;  // not a verdict: rp_mux_poll fails with RP_STATUS_INVALID_ARGUMENT
        }
    }
    const rp_mux *p_ = nullptr;
};

// ----------------------------------------------------------------------------------------------
// Push: worker side
// ----------------------------------------------------------------------------------------------

/// A push, borrowed (inside a handler: valid until it returns).
class PushView {
public:
    explicit PushView(const rp_push *p) noexcept : p_(p) {}
    std::uint64_t correlation_id() const noexcept { return rp_push_correlation_id(p_); }
    std::uint32_t payload_protocol() const noexcept { return rp_push_payload_protocol(p_); }
    Bytes payload() const noexcept { return detail::view(rp_push_payload(p_)); }
    std::uint64_t deadline_unix_ms() const noexcept { return rp_push_deadline_unix_ms(p_); }
    std::string_view traceparent() const noexcept { return detail::view(rp_push_traceparent(p_)); }
    std::string_view tracestate() const noexcept { return detail::view(rp_push_tracestate(p_)); }
    const rp_push *capi() const noexcept { return p_; }

protected:
    const rp_push *p_;
};

/// An owned push (rp_push); its views live as long as it does.
class Push : public PushView {
public:
    explicit Push(rp_push *p) noexcept : PushView(p), owned_(p) {}
    rp_push *release() noexcept {
        p_ = nullptr;
        return owned_.release();
    }

private:
    detail::Owned<rp_push, rp_push_free> owned_;
};

/// One transition of a worker's connection (see rp_push_worker_event_callback in rp.h).
struct WorkerEvent {
    /// CONNECTED, LOST, RECONNECTING or GAVE_UP.
    rp_push_worker_event kind;
    /// The reconnect attempt it concerns (0 for the first connection and a loss).
    std::uint32_t attempt;
    /// The wait before the attempt (RECONNECTING; 0 otherwise).
    std::chrono::milliseconds delay;
    /// The failure behind it (RP_STATUS_OK when none).
    rp_status status;
    /// Why ("" when there is no reason).
    std::string message;
};

/// What a worker registers as and how it connects (rp_push_worker_options). The endpoint is
/// a librp push server's (socket path, @name, tcp://host:port, tls://host:port) or a liminal server's
/// (liminal+tcp://host:port), where service() and add_payload_protocol() throw
/// rp::Error(RP_STATUS_INVALID_ARGUMENT) and add_activity_descriptor() applies.
class WorkerOptions {
public:
    WorkerOptions(const std::string &endpoint, const std::string &identity, const std::string &task_queue = "") {
        rp_push_worker_options *p = nullptr;
        detail::check(rp_push_worker_options_new(endpoint.c_str(), identity.c_str(), task_queue.c_str(), &p));
        p_.reset(p);
    }
    WorkerOptions &add_namespace(const std::string &s) { return set(rp_push_worker_options_add_namespace(p_.get(), s.c_str())); }
    WorkerOptions &add_activity_type(const std::string &s) {
        return set(rp_push_worker_options_add_activity_type(p_.get(), s.c_str()));
    }
    WorkerOptions &node(const std::string &s) { return set(rp_push_worker_options_set_node(p_.get(), s.c_str())); }
    WorkerOptions &add_payload_protocol(std::uint32_t id) { return set(rp_push_worker_options_add_payload_protocol(p_.get(), id)); }
    WorkerOptions &service(const std::string &s) { return set(rp_push_worker_options_set_service(p_.get(), s.c_str())); }
    /// Describes an activity with its input and output JSON schemas (liminal endpoints only).
    WorkerOptions &add_activity_descriptor(const std::string &name, const std::string &input_schema_json,
                                           const std::string &output_schema_json) {
        return set(rp_push_worker_options_add_activity_descriptor(p_.get(), name.c_str(), input_schema_json.c_str(),
                                                                  output_schema_json.c_str()));
    }
    WorkerOptions &connect_timeout(std::chrono::milliseconds t) {
        return set(rp_push_worker_options_set_connect_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    WorkerOptions &auth_token(Bytes t) {
        return set(rp_push_worker_options_set_auth_token(p_.get(), detail::ptr_or_null(t), t.size));
    }
    /// Reconnects after the connection is lost (rp_push_worker_options_set_reconnect): attempt n
    /// waits a delay drawn from min(max_delay, min_delay * 2^(n-1)), spread by `jitter`; gives up
    /// after `max_attempts` failed attempts in a row (0 = never). Correlation ids are then the
    /// worker's own, and a reply to a push of a lost connection throws rp::Error(CLOSED).
    WorkerOptions &reconnect(std::chrono::milliseconds min_delay, std::chrono::milliseconds max_delay,
                             std::uint32_t max_attempts = 0, rp_reconnect_jitter jitter = RP_RECONNECT_JITTER_FULL) {
        set(rp_push_worker_options_set_reconnect(p_.get(), detail::to_delay(min_delay), detail::to_delay(max_delay),
                                                 max_attempts));
        return set(rp_push_worker_options_set_reconnect_jitter(p_.get(), jitter));
    }
    /// Receives the worker's connection events: any callable `void(const rp::WorkerEvent &)`. It
    /// runs on the thread in Worker::recv / dispatch, inside that call (see
    /// rp_push_worker_event_callback). An exception from it is rethrown by that recv / dispatch,
    /// after the call (a push it received is then dropped unanswered).
    template <class F, class = std::enable_if_t<std::is_invocable_v<F &, const WorkerEvent &>>>
    WorkerOptions &on_event(F &&callback) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(callback));
        // librp owns box on every path.
        return set(rp_push_worker_options_set_event_callback(p_.get(), &event_tramp<Fn>, box, &detail::delete_box<Fn>));
    }
    /// CA roots (PEM text) a tls:// server's certificate must chain to (default: the system's).
    WorkerOptions &tls_ca_pem(std::string_view pem) {
        return set(rp_push_worker_options_set_tls_ca_pem(p_.get(), detail::bytes_of(pem), pem.size()));
    }
    /// CA roots from a PEM file (read now).
    WorkerOptions &tls_ca_file(const std::string &path) {
        return set(rp_push_worker_options_set_tls_ca_file(p_.get(), path.c_str()));
    }
    /// The name the server's certificate must be valid for (default: the endpoint's host).
    WorkerOptions &tls_server_name(const std::string &name) {
        return set(rp_push_worker_options_set_tls_server_name(p_.get(), name.c_str()));
    }
    /// Client certificate chain and key (PEM text) for mutual TLS.
    WorkerOptions &tls_client_cert_pem(std::string_view cert_chain_pem, std::string_view key_pem) {
        return set(rp_push_worker_options_set_tls_client_cert_pem(p_.get(), detail::bytes_of(cert_chain_pem), cert_chain_pem.size(),
                                                                  detail::bytes_of(key_pem), key_pem.size()));
    }
    /// Client certificate chain and key from PEM files (read now).
    WorkerOptions &tls_client_cert_files(const std::string &cert_chain_path, const std::string &key_path) {
        return set(rp_push_worker_options_set_tls_client_cert_files(p_.get(), cert_chain_path.c_str(), key_path.c_str()));
    }
    rp_push_worker_options *release() noexcept { return p_.release(); }

private:
    template <class Fn>
    static void event_tramp(void *ud, rp_push_worker_event kind, std::uint32_t attempt, std::uint64_t delay_ms,
                            rp_status status, const char *message) noexcept {
        try {
            WorkerEvent e{kind, attempt, std::chrono::milliseconds(static_cast<std::int64_t>(delay_ms)), status, message};
            (*static_cast<Fn *>(ud))(static_cast<const WorkerEvent &>(e));
        } catch (...) {
            detail::stash_exception();
        }
    }
    WorkerOptions &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_push_worker_options, rp_push_worker_options_free> p_;
};

/// A worker's connection to a push server (rp_push_worker). const methods are thread-safe
/// (one thread may wait in recv while others reply or close).
class Worker {
public:
    /// Connects, says Hello and registers; consumes `options` (even when it throws).
    /// Throws rp::Refused, or rp::Error (REJECTED with the reason, TIMEOUT, IO, ...).
    /// (Both overloads consume: a chained builder expression is an lvalue.)
    static Worker connect(WorkerOptions &options) {
        rp_push_worker *c = nullptr;
        detail::check(rp_push_worker_connect(options.release(), &c));
        return Worker(c);
    }
    static Worker connect(WorkerOptions &&options) { return connect(options); }
    explicit Worker(rp_push_worker *c) noexcept : p_(c) {}

    std::uint64_t worker_id() const noexcept { return rp_push_worker_id(p_.get()); }
    /// Readable (level-triggered) while a push waits or the connection ended. Owned by the worker.
    int fd() const noexcept { return rp_push_worker_fd(p_.get()); }

    /// The next push, or std::nullopt when none came within `timeout` (forever: rp::forever).
    /// Throws rp::Error(RP_STATUS_CLOSED) once the connection ended.
    /// A reconnecting worker keeps waiting through a lost connection; its event callback runs here.
    std::optional<Push> recv(std::chrono::milliseconds timeout) const {
        rp_push *p = nullptr;
        detail::pending_exception() = nullptr;
        rp_status st = rp_push_worker_recv(p_.get(), detail::to_ms(timeout), &p);
        std::optional<Push> push;
        if (st == RP_STATUS_OK) push.emplace(p);
        detail::rethrow_pending();
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return push;
    }
    void reply(std::uint64_t correlation_id, Bytes payload) const {
        detail::check(rp_push_worker_reply(p_.get(), correlation_id, detail::ptr_or_null(payload), payload.size));
    }
    void reply_error(std::uint64_t correlation_id, int32_t code, const std::string &message) const {
        detail::check(rp_push_worker_reply_error(p_.get(), correlation_id, code, message.c_str()));
    }

    /// Sets the handler dispatch runs for each push: any callable `void(const Worker &,
    /// PushView)` or `rp_status(const Worker &, PushView)`. It must reply (now or later).
    /// An exception from it answers the push with a failure carrying what() (code: the
    /// rp::Error's status, else 1001); it is not rethrown.
    template <class F> void set_handler(F &&handler) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(handler));
        // librp owns box on every path.
        detail::check(rp_push_worker_set_handler(p_.get(), &handler_tramp<Fn>, box, &detail::delete_box<Fn>));
    }
    void clear_handler() { detail::check(rp_push_worker_set_handler(p_.get(), nullptr, nullptr, nullptr)); }

    /// Runs the handler for pushes; returns how many were handled (0: none came in time).
    std::size_t dispatch(std::chrono::milliseconds timeout, std::size_t max_pushes = 0) const {
        std::size_t n = 0;
        detail::pending_exception() = nullptr;
        rp_status st = rp_push_worker_dispatch(p_.get(), detail::to_ms(timeout), max_pushes, &n);
        detail::rethrow_pending();
        if (st == RP_STATUS_TIMEOUT) return 0;
        detail::check(st);
        return n;
    }
    /// Closes the connection; waiters return CLOSED. Idempotent, any thread.
    void close() const noexcept { rp_push_worker_close(p_.get()); }

    rp_push_worker *capi() const noexcept { return p_.get(); }
    rp_push_worker *release() noexcept { return p_.release(); }

private:
    template <class Fn>
    static int32_t handler_tramp(void *ud, const rp_push_worker *c, const rp_push *p) noexcept {
        // A non-owning view of the worker for the duration of the call.
        Worker self(const_cast<rp_push_worker *>(c));
        int32_t code = RP_STATUS_OK;
        std::string what;
        try {
            auto &fn = *static_cast<Fn *>(ud);
            if constexpr (std::is_void_v<std::invoke_result_t<Fn &, const Worker &, PushView>>) {
                fn(static_cast<const Worker &>(self), PushView(p));
            } else {
                code = static_cast<int32_t>(fn(static_cast<const Worker &>(self), PushView(p)));
            }
        } catch (const Error &e) {
            code = static_cast<int32_t>(e.status());
            what = e.what();
        } catch (const std::exception &e) {
            code = 1001;
            what = e.what();
        } catch (...) {
            code = 1001;
            what = "unknown exception";
        }
        self.p_.release();
        if (!what.empty()) {
            try {
                (void)rp_push_worker_reply_error(c, rp_push_correlation_id(p), code, what.c_str());
            } catch (...) {
            }
        }
        return code;
    }
    detail::Owned<rp_push_worker, rp_push_worker_free> p_;
};

// ----------------------------------------------------------------------------------------------
// Push: server side
// ----------------------------------------------------------------------------------------------

/// One worker (a copy of rp_push_worker_info).
struct WorkerInfo {
    std::uint64_t id = 0;
    std::string identity, task_queue, node;
    std::vector<std::string> namespaces, activity_types;
    std::vector<std::uint32_t> payload_protocols;
    bool has_peer = false;  ///< kernel credentials (Unix peers only)
    std::uint32_t pid = 0, uid = 0, gid = 0;
    bool tls_verified = false;  ///< a verified client certificate (mutual TLS)
    std::string tls_subject;    ///< its subject, "CN=...,O=..."
    std::vector<std::string> tls_sans;  ///< its subject alternative names, "DNS:...", "IP:..."
    std::size_t in_flight = 0;

    static WorkerInfo from_c(const rp_push_worker_info *w) {
        WorkerInfo i;
        i.id = rp_push_worker_info_id(w);
        i.identity = std::string(detail::view(rp_push_worker_info_identity(w)));
        i.task_queue = std::string(detail::view(rp_push_worker_info_task_queue(w)));
        i.node = std::string(detail::view(rp_push_worker_info_node(w)));
        for (std::size_t k = 0, n = rp_push_worker_info_namespace_count(w); k < n; k++)
            i.namespaces.emplace_back(detail::view(rp_push_worker_info_namespace(w, k)));
        for (std::size_t k = 0, n = rp_push_worker_info_activity_type_count(w); k < n; k++)
            i.activity_types.emplace_back(detail::view(rp_push_worker_info_activity_type(w, k)));
        for (std::size_t k = 0, n = rp_push_worker_info_payload_protocol_count(w); k < n; k++)
            i.payload_protocols.push_back(rp_push_worker_info_payload_protocol(w, k));
        i.has_peer = rp_push_worker_info_peer(w, &i.pid, &i.uid, &i.gid);
        i.tls_verified = rp_push_worker_info_tls_verified(w);
        i.tls_subject = std::string(detail::view(rp_push_worker_info_tls_subject(w)));
        for (std::size_t k = 0, n = rp_push_worker_info_tls_san_count(w); k < n; k++)
            i.tls_sans.emplace_back(detail::view(rp_push_worker_info_tls_san(w, k)));
        i.in_flight = rp_push_worker_info_in_flight(w);
        return i;
    }
};

/// A registration decision.
struct Registration {
    bool accept = true;
    std::string reason;
    static Registration accepted() { return {}; }
    static Registration rejected(std::string why) { return {false, std::move(why)}; }
};

/// How a push server is set up (rp_push_server_options).
class ServerOptions {
public:
    explicit ServerOptions(const std::string &endpoint) {
        rp_push_server_options *p = nullptr;
        detail::check(rp_push_server_options_new(endpoint.c_str(), &p));
        p_.reset(p);
    }
    ServerOptions &service(const std::string &s) { return set(rp_push_server_options_set_service(p_.get(), s.c_str())); }
    ServerOptions &allow_other_uids(bool b) { return set(rp_push_server_options_set_allow_other_uids(p_.get(), b)); }
    /// Lets one group reach a path socket: permission bits (0660) and a group id (-1 keeps the
    /// process's group); see rp_push_server_options_set_socket_access.
    ServerOptions &socket_access(std::uint32_t mode, std::int64_t group = -1) {
        return set(rp_push_server_options_set_socket_access(p_.get(), mode, group));
    }
    ServerOptions &allow_remote_tcp(bool b) { return set(rp_push_server_options_set_allow_remote_tcp(p_.get(), b)); }
    /// Certificate chain and key (PEM text) of a tls:// endpoint.
    ServerOptions &tls_cert_pem(std::string_view cert_chain_pem, std::string_view key_pem) {
        return set(rp_push_server_options_set_tls_cert_pem(p_.get(), detail::bytes_of(cert_chain_pem), cert_chain_pem.size(),
                                                           detail::bytes_of(key_pem), key_pem.size()));
    }
    /// Certificate chain and key from PEM files (read now).
    ServerOptions &tls_cert_files(const std::string &cert_chain_path, const std::string &key_path) {
        return set(rp_push_server_options_set_tls_cert_files(p_.get(), cert_chain_path.c_str(), key_path.c_str()));
    }
    /// Mutual TLS: client certificates must chain to these CA roots (PEM text); `required`
    /// refuses workers without one.
    ServerOptions &tls_client_ca_pem(std::string_view pem, bool required = true) {
        return set(rp_push_server_options_set_tls_client_ca_pem(p_.get(), detail::bytes_of(pem), pem.size(), required));
    }
    /// Mutual TLS with the client CA roots from a PEM file (read now).
    ServerOptions &tls_client_ca_file(const std::string &path, bool required = true) {
        return set(rp_push_server_options_set_tls_client_ca_file(p_.get(), path.c_str(), required));
    }
    ServerOptions &auth_token(Bytes t) {
        return set(rp_push_server_options_set_auth_token(p_.get(), detail::ptr_or_null(t), t.size));
    }
    ServerOptions &handshake_timeout(std::chrono::milliseconds t) {
        return set(rp_push_server_options_set_handshake_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    /// Most connections at once, and from one peer uid (defaults 4096 and 2048).
    ServerOptions &max_connections(std::size_t total, std::size_t per_uid) {
        return set(rp_push_server_options_set_max_connections(p_.get(), total, per_uid));
    }
    /// Time a registered worker has to finish a frame it started (0 = no limit; default 30 s).
    ServerOptions &frame_timeout(std::chrono::milliseconds t) {
        return set(rp_push_server_options_set_frame_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    ServerOptions &max_send_buffer(std::size_t bytes) { return set(rp_push_server_options_set_max_send_buffer(p_.get(), bytes)); }

    /// Decides registrations inside PushServer::dispatch: any callable
    /// `rp::Registration(const rp::WorkerInfo &)`. An exception rejects the worker with what().
    template <class F> ServerOptions &on_registration(F &&f) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(f));
        return set(rp_push_server_options_set_registration_callback(p_.get(), &registration_tramp<Fn>, box,
                                                                     &detail::delete_box<Fn>));
    }
    /// Learns of workers registering and leaving inside PushServer::dispatch: any callable
    /// `void(const rp::WorkerInfo &, bool connected, std::string_view reason)`. An exception
    /// is rethrown by dispatch.
    template <class F> ServerOptions &on_worker(F &&f) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(f));
        return set(rp_push_server_options_set_worker_callback(p_.get(), &worker_tramp<Fn>, box,
                                                               &detail::delete_box<Fn>));
    }
    rp_push_server_options *release() noexcept { return p_.release(); }

private:
    template <class Fn>
    static int32_t registration_tramp(void *ud, const rp_push_worker_info *w, char *reason, std::size_t cap) noexcept {
        Registration r;
        try {
            r = (*static_cast<Fn *>(ud))(WorkerInfo::from_c(w));
        } catch (const std::exception &e) {
            r = Registration{false, e.what()};
        } catch (...) {
            r = Registration{false, "registration callback failed"};
        }
        if (r.accept) return RP_REGISTRATION_VERDICT_ACCEPT;
        if (cap > 0) {
            std::size_t n = r.reason.copy(reason, cap - 1);
            reason[n] = '\0';
        }
        return RP_REGISTRATION_VERDICT_REJECT;
    }
    template <class Fn>
    static void worker_tramp(void *ud, const rp_push_worker_info *w, bool connected, rp_str reason) noexcept {
        try {
            (*static_cast<Fn *>(ud))(WorkerInfo::from_c(w), connected, detail::view(reason));
        } catch (...) {
            detail::stash_exception();
        }
    }
    ServerOptions &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_push_server_options, rp_push_server_options_free> p_;
};

/// One job to push (rp_push_request); pushing copies it.
class PushRequest {
public:
    PushRequest(std::uint32_t payload_protocol, Bytes payload) {
        rp_push_request *p = nullptr;
        detail::check(rp_push_request_new(payload_protocol, detail::ptr_or_null(payload), payload.size, &p));
        p_.reset(p);
    }
    PushRequest &deadline_unix_ms(std::uint64_t ms) { return set(rp_push_request_set_deadline_unix_ms(p_.get(), ms)); }
    PushRequest &traceparent(const std::string &s) { return set(rp_push_request_set_traceparent(p_.get(), s.c_str())); }
    PushRequest &tracestate(const std::string &s) { return set(rp_push_request_set_tracestate(p_.get(), s.c_str())); }
    PushRequest &to_worker(std::uint64_t id) { return set(rp_push_request_to_worker(p_.get(), id)); }
    PushRequest &to_task_queue(const std::string &q) { return set(rp_push_request_to_task_queue(p_.get(), q.c_str())); }
    PushRequest &to_protocol(std::uint32_t id) { return set(rp_push_request_to_protocol(p_.get(), id)); }
    const rp_push_request *capi() const noexcept { return p_.get(); }

private:
    PushRequest &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_push_request, rp_push_request_free> p_;
};

/// A worker's answer (rp_push_result).
class PushResult {
public:
    explicit PushResult(rp_push_result *r) noexcept : p_(r) {}
    bool is_failure() const noexcept { return rp_push_result_is_failure(p_.get()); }
    Bytes payload() const noexcept { return detail::view(rp_push_result_payload(p_.get())); }
    int32_t failure_code() const noexcept { return rp_push_result_failure_code(p_.get()); }
    std::string_view failure_message() const noexcept { return detail::view(rp_push_result_failure_message(p_.get())); }

private:
    detail::Owned<rp_push_result, rp_push_result_free> p_;
};

/// An in-flight push (rp_push_ticket); destroying it does not cancel the push.
class PushTicket {
public:
    explicit PushTicket(rp_push_ticket *t) noexcept : p_(t) {}
    std::uint64_t correlation_id() const noexcept { return rp_push_ticket_correlation_id(p_.get()); }
    bool done() const noexcept { return rp_push_ticket_is_done(p_.get()); }
    /// Ends one wait() (the one blocked now, or the next): it returns std::nullopt; the push
    /// goes on. Callable from any thread.
    void interrupt() const noexcept { rp_push_ticket_interrupt(p_.get()); }
    /// The outcome, or std::nullopt while there is none after `timeout` (or the wait was
    /// interrupted). Throws rp::Error for delivery failures (CLOSED, NOT_FOUND, AGAIN), for a
    /// timeout of the push's own deadline (TIMEOUT with done() true), and when the outcome was
    /// already taken.
    std::optional<PushResult> wait(std::chrono::milliseconds timeout) const {
        rp_push_result *r = nullptr;
        rp_status st = rp_push_ticket_wait(p_.get(), detail::to_ms(timeout), &r);
        if ((st == RP_STATUS_TIMEOUT && !done()) || st == RP_STATUS_INTERRUPTED) return std::nullopt;
        detail::check(st);
        return PushResult(r);
    }

private:
    detail::Owned<rp_push_ticket, rp_push_ticket_free> p_;
};

/// A running push server (rp_push_server). const methods are thread-safe; dispatch runs on one
/// thread at a time.
class PushServer {
public:
    /// Binds and starts serving; consumes `options` (even when it throws).
    /// (Both overloads consume: a chained builder expression is an lvalue.)
    static PushServer bind(ServerOptions &options) {
        rp_push_server *s = nullptr;
        detail::check(rp_push_server_bind(options.release(), &s));
        return PushServer(s);
    }
    static PushServer bind(ServerOptions &&options) { return bind(options); }
    explicit PushServer(rp_push_server *s) noexcept : p_(s) {}

    std::string_view endpoint() const noexcept { return detail::view(rp_push_server_endpoint(p_.get())); }
    PushTicket push(const PushRequest &req) const {
        rp_push_ticket *t = nullptr;
        detail::check(rp_push_server_push(p_.get(), req.capi(), &t));
        return PushTicket(t);
    }
    /// The worker's answer, or std::nullopt on timeout. Throws for CLOSED, NOT_FOUND, AGAIN.
    std::optional<PushResult> push_wait(const PushRequest &req, std::chrono::milliseconds timeout) const {
        rp_push_result *r = nullptr;
        rp_status st = rp_push_server_push_wait(p_.get(), req.capi(), detail::to_ms(timeout), &r);
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return PushResult(r);
    }
    std::vector<WorkerInfo> workers() const {
        rp_push_worker_list *l = nullptr;
        detail::check(rp_push_server_workers(p_.get(), &l));
        detail::Owned<rp_push_worker_list, rp_push_worker_list_free> guard(l);
        std::vector<WorkerInfo> out;
        for (std::size_t i = 0, n = rp_push_worker_list_len(l); i < n; i++)
            out.push_back(WorkerInfo::from_c(rp_push_worker_list_get(l, i)));
        return out;
    }
    /// Runs the server callbacks for pending events; returns how many (0: none in time).
    std::size_t dispatch(std::chrono::milliseconds timeout) const {
        std::size_t n = 0;
        detail::pending_exception() = nullptr;
        rp_status st = rp_push_server_dispatch(p_.get(), detail::to_ms(timeout), &n);
        detail::rethrow_pending();
        if (st == RP_STATUS_TIMEOUT) return 0;
        detail::check(st);
        return n;
    }
    int event_fd() const noexcept { return rp_push_server_event_fd(p_.get()); }
    void disconnect(std::uint64_t worker_id) const { detail::check(rp_push_server_disconnect(p_.get(), worker_id)); }
    /// Stops serving (blocks until the server thread ended). Idempotent, any thread.
    void shutdown() const noexcept { rp_push_server_shutdown(p_.get()); }

    rp_push_server *capi() const noexcept { return p_.get(); }
    rp_push_server *release() noexcept { return p_.release(); }

private:
    detail::Owned<rp_push_server, rp_push_server_free> p_;
};

// ----------------------------------------------------------------------------------------------
// Handoff
// ----------------------------------------------------------------------------------------------

/// A store of one-time handoff tokens (rp_handoff_store, shared in C: every method may run
/// concurrently). Move-only here, since the C API has no clone for it.
class HandoffStore {
public:
    using Token = std::array<std::uint8_t, RP_HANDOFF_TOKEN_LEN>;

    /// `max_pending` 0 = 1024; `ttl` 0 = 30 s.
    explicit HandoffStore(std::uint32_t max_pending = 0, std::chrono::milliseconds ttl = std::chrono::milliseconds(0)) {
        const rp_handoff_store *p = nullptr;
        detail::check(rp_handoff_store_new(max_pending, static_cast<std::uint32_t>(ttl.count()), &p));
        p_.reset(p);
    }
    /// A fresh random token, stored; std::nullopt when the store is full (RP_STATUS_AGAIN).
    std::optional<Token> issue() const {
        Token t{};
        rp_status st = rp_handoff_store_issue(p_.get(), t.data(), t.size());
        if (st == RP_STATUS_AGAIN) return std::nullopt;
        detail::check(st);
        return t;
    }
    /// Adds a token issued elsewhere; false when the store is full.
    bool insert(Bytes token) const {
        rp_status st = rp_handoff_store_insert(p_.get(), detail::ptr_or_null(token), token.size);
        if (st == RP_STATUS_AGAIN) return false;
        detail::check(st);
        return true;
    }
    struct Offer {
        bool accepted = false;
        std::uint64_t correlation_id = 0;
    };
    /// Serves one offer on the framed connection `fd`; std::nullopt on timeout.
    std::optional<Offer> serve_offer(int fd, std::chrono::milliseconds timeout) const {
        Offer o;
        rp_status st = rp_handoff_serve_offer(p_.get(), fd, detail::to_ms(timeout), &o.accepted, &o.correlation_id);
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return o;
    }
    /// Receives a handed-off connection on the Unix socket `fd`; the caller owns (and closes)
    /// the returned descriptor. std::nullopt on timeout; throws rp::Error(RP_STATUS_REJECTED)
    /// when the token was refused.
    std::optional<int> accept(int fd, std::chrono::milliseconds timeout) const {
        int32_t out = -1;
        rp_status st = rp_handoff_accept(p_.get(), fd, detail::to_ms(timeout), &out);
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return out;
    }
    const rp_handoff_store *capi() const noexcept { return p_.get(); }

private:
    struct Free {
        void operator()(const rp_handoff_store *p) const noexcept { rp_handoff_store_free(p); }
    };
    std::unique_ptr<const rp_handoff_store, Free> p_;
};

// ----------------------------------------------------------------------------------------------
// Broker client, connections, admin requests, broker server
// ----------------------------------------------------------------------------------------------

/// How connect_broker reached the backend (rp_broker_route).
enum class Route : int32_t {
    hello_skip = RP_BROKER_ROUTE_HELLO_SKIP,  ///< straight to the cached endpoint
    negotiated = RP_BROKER_ROUTE_NEGOTIATED,  ///< Hello, then a new connection to the backend
    handed_off = RP_BROKER_ROUTE_HANDED_OFF,  ///< Hello, then the broker handed the connection over
};

inline std::string_view to_string(Route r) noexcept {
    switch (r) {
    case Route::hello_skip: return "hello-skip";
    case Route::negotiated: return "negotiated";
    case Route::handed_off: return "handed off";
    }
    return "unknown route";
}

/// How to reach a service's backend through a broker (rp_broker_options).
/// How a client verifies a tls:// endpoint and what it presents (rp_tls_client_options), for
/// BrokerOptions::tls. Defaults: the system's CA roots, the endpoint's host as the name, no
/// client certificate.
class TlsClientOptions {
public:
    TlsClientOptions() {
        rp_tls_client_options *p = nullptr;
        detail::check(rp_tls_client_options_new(&p));
        p_.reset(p);
    }
    /// CA roots (PEM text) the server's certificate must chain to.
    TlsClientOptions &ca_pem(std::string_view pem) {
        return set(rp_tls_client_options_set_ca_pem(p_.get(), detail::bytes_of(pem), pem.size()));
    }
    /// CA roots from a PEM file (read now).
    TlsClientOptions &ca_file(const std::string &path) { return set(rp_tls_client_options_set_ca_file(p_.get(), path.c_str())); }
    /// The name the server's certificate must be valid for (default: the endpoint's host).
    TlsClientOptions &server_name(const std::string &name) {
        return set(rp_tls_client_options_set_server_name(p_.get(), name.c_str()));
    }
    /// Client certificate chain and key (PEM text) for mutual TLS.
    TlsClientOptions &client_cert_pem(std::string_view cert_chain_pem, std::string_view key_pem) {
        return set(rp_tls_client_options_set_client_cert_pem(p_.get(), detail::bytes_of(cert_chain_pem), cert_chain_pem.size(),
                                                             detail::bytes_of(key_pem), key_pem.size()));
    }
    /// Client certificate chain and key from PEM files (read now).
    TlsClientOptions &client_cert_files(const std::string &cert_chain_path, const std::string &key_path) {
        return set(rp_tls_client_options_set_client_cert_files(p_.get(), cert_chain_path.c_str(), key_path.c_str()));
    }
    const rp_tls_client_options *capi() const noexcept { return p_.get(); }

private:
    TlsClientOptions &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_tls_client_options, rp_tls_client_options_free> p_;
};

class BrokerOptions {
public:
    /// `own_version` empty = `wanted_version` (hello-skip is tried only when they are equal).
    BrokerOptions(const std::string &broker_endpoint, const std::string &service, const std::string &wanted_version,
                  const std::string &own_version = std::string()) {
        rp_broker_options *p = nullptr;
        detail::check(rp_broker_options_new(broker_endpoint.c_str(), service.c_str(), wanted_version.c_str(),
                                            (own_version.empty() ? wanted_version : own_version).c_str(), &p));
        p_.reset(p);
    }
    /// The backend endpoint remembered from an earlier connect (BrokerResult::endpoint).
    BrokerOptions &cached_endpoint(const std::string &s) {
        return set(rp_broker_options_set_cached_endpoint(p_.get(), s.c_str()));
    }
    BrokerOptions &client_version(const std::string &s) {
        return set(rp_broker_options_set_client_version(p_.get(), s.c_str()));
    }
    BrokerOptions &keepalive(std::chrono::seconds t) {
        return set(rp_broker_options_set_keepalive_secs(p_.get(), static_cast<std::uint64_t>(t.count())));
    }
    /// Opt in to adopting a handed-off connection, waiting up to `wait` (default 2 s).
    BrokerOptions &adopt_handoff(bool adopt, std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
        return set(rp_broker_options_set_adopt_handoff(p_.get(), adopt, detail::to_ms(wait)));
    }
    /// Limit for each connect and for the Hello round trip (default 5 s; rp::forever = none).
    BrokerOptions &timeout(std::chrono::milliseconds t) {
        return set(rp_broker_options_set_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    /// RUNNING_PROCESS_DISABLE=1 then fails connect_broker with rp::Error(RP_STATUS_DISABLED).
    BrokerOptions &honor_disable_env(bool b) { return set(rp_broker_options_set_honor_disable_env(p_.get(), b)); }
    /// How tls:// endpoints (the broker, the cached endpoint, the backend it names) are
    /// verified, copied now. A TLS connection is never handed off.
    BrokerOptions &tls(const TlsClientOptions &t) { return set(rp_broker_options_set_tls(p_.get(), t.capi())); }
    rp_broker_options *release() noexcept { return p_.release(); }

private:
    BrokerOptions &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_broker_options, rp_broker_options_free> p_;
};

/// A received frame (rp_frame), owned; frame() views its bytes, valid while it lives (moves
/// keep them valid).
class ReceivedFrame {
public:
    explicit ReceivedFrame(rp_frame *f) : p_(f) {
        rp_frame_view v{};
        detail::check(rp_frame_view_of(f, &v));
        frame_ = Frame::from_c(v);
    }
    const Frame &frame() const noexcept { return frame_; }
    const Frame *operator->() const noexcept { return &frame_; }
    rp_frame *capi() const noexcept { return p_.get(); }

private:
    detail::Owned<rp_frame, rp_frame_free> p_;
    Frame frame_;
};

/// Kernel-reported credentials of a Unix-socket peer.
struct PeerCredentials {
    std::uint32_t pid = 0, uid = 0, gid = 0;
};

/// A framed v1 connection (rp_conn). const methods are thread-safe: one thread may wait in
/// recv while another sends or closes.
class Conn {
public:
    explicit Conn(rp_conn *c) noexcept : p_(c) {}
    /// A connection over a connected Unix stream socket (for example a handed-off descriptor);
    /// `fd` is consumed on every path, even when this throws.
    static Conn adopt_fd(int fd) {
        rp_conn *c = nullptr;
        detail::check(rp_conn_adopt_fd(fd, &c));
        return Conn(c);
    }

    /// Sends one frame. Throws rp::Error (CLOSED, TIMEOUT after 30 s unread, TOO_LARGE, IO).
    void send(const Frame &f) const {
        rp_frame_view v = f.to_c();
        detail::check(rp_conn_send(p_.get(), &v));
    }
    /// The next frame, or std::nullopt when none is complete within `timeout` (rp::forever
    /// waits). Throws rp::Error(RP_STATUS_CLOSED) once the peer closed or close() was called.
    std::optional<ReceivedFrame> recv(std::chrono::milliseconds timeout) const {
        rp_frame *f = nullptr;
        rp_status st = rp_conn_recv(p_.get(), detail::to_ms(timeout), &f);
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return ReceivedFrame(f);
    }
    /// A descriptor for poll/epoll, readable (level-triggered) exactly while recv(0ms) would
    /// return a frame or the end, also for frames already buffered: one recv per wake-up is
    /// enough. Not the socket: watch it for readability only; owned by the connection.
    int fd() const noexcept { return rp_conn_fd(p_.get()); }
    /// The peer's credentials; std::nullopt when there are none (TCP).
    std::optional<PeerCredentials> peer_credentials() const {
        PeerCredentials c;
        rp_status st = rp_conn_peer_credentials(p_.get(), &c.pid, &c.uid, &c.gid);
        if (st == RP_STATUS_NOT_FOUND) return std::nullopt;
        detail::check(st);
        return c;
    }
    /// Closes the connection; a blocked recv throws CLOSED. Idempotent, any thread.
    void close() const noexcept { rp_conn_close(p_.get()); }

    rp_conn *capi() const noexcept { return p_.get(); }
    rp_conn *release() noexcept { return p_.release(); }

private:
    detail::Owned<rp_conn, rp_conn_free> p_;
};

/// What connect_broker learned (copies of rp_broker_result's fields).
struct BrokerResult {
    Route route = Route::negotiated;
    std::string endpoint;        ///< to cache: BrokerOptions::cached_endpoint next time
    std::string daemon_version;  ///< empty after hello-skip
    std::uint64_t server_capabilities = 0;
    std::chrono::seconds keepalive{0};
    std::uint64_t connection_id = 0;
};

/// A backend connection and how it was reached.
struct BrokerConnection {
    Conn conn;
    BrokerResult result;
};

/// Connects to the backend through the broker; consumes `options` (even when it throws).
/// Throws rp::Refused (code, reason, retry hint, details), or rp::Error (DISABLED and CONFIG
/// with honor_disable_env, TIMEOUT, IO, PROTOCOL, INVALID_ARGUMENT).
inline BrokerConnection connect_broker(BrokerOptions &options) {
    rp_broker_result *r = nullptr;
    detail::check(rp_broker_connect(options.release(), &r));
    detail::Owned<rp_broker_result, rp_broker_result_free> guard(r);
    BrokerResult res;
    res.route = static_cast<Route>(rp_broker_result_route(r));
    res.endpoint = std::string(detail::view(rp_broker_result_endpoint(r)));
    res.daemon_version = std::string(detail::view(rp_broker_result_daemon_version(r)));
    res.server_capabilities = rp_broker_result_server_capabilities(r);
    res.keepalive = std::chrono::seconds(rp_broker_result_keepalive_secs(r));
    res.connection_id = rp_broker_result_connection_id(r);
    rp_conn *c = nullptr;
    detail::check(rp_broker_result_take_conn(r, &c));
    return BrokerConnection{Conn(c), std::move(res)};
}
inline BrokerConnection connect_broker(BrokerOptions &&options) { return connect_broker(options); }

/// RUNNING_PROCESS_DISABLE: true for "1", false when unset or empty; throws rp::Error(CONFIG)
/// for any other value.
inline bool disabled_by_env() {
    bool b = false;
    detail::check(rp_broker_disabled_by_env(&b));
    return b;
}

/// Admin verbs (payload protocol 0xAD01) and reply kinds.
enum class AdminVerb : int32_t { status = 1, healthz = 4, readyz = 5, metrics = 9, shutdown = 21 };
enum class AdminKind : int32_t { text = 0, json = 1, openmetrics = 2 };

struct AdminReply {
    AdminKind kind = AdminKind::text;
    std::uint32_t exit_code = 0;  ///< 0 = success
    std::string body;
};

/// Sends one admin request on a new connection to `endpoint` and waits up to `timeout` (default
/// 5 s; rp::forever = no limit) for the reply; std::nullopt when none came in time. `service`
/// empty = none.
inline std::optional<AdminReply> admin_request(const std::string &endpoint, AdminVerb verb,
                                               const std::string &service = std::string(),
                                               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    rp_admin_reply *r = nullptr;
    rp_status st = rp_admin_request(endpoint.c_str(), static_cast<int32_t>(verb),
                                    service.empty() ? nullptr : service.c_str(), detail::to_ms(timeout), &r);
    if (st == RP_STATUS_TIMEOUT) return std::nullopt;
    detail::check(st);
    detail::Owned<rp_admin_reply, rp_admin_reply_free> guard(r);
    return AdminReply{static_cast<AdminKind>(rp_admin_reply_kind(r)), rp_admin_reply_exit_code(r),
                      std::string(detail::view(rp_admin_reply_body(r)))};
}

/// How a broker server is set up (rp_broker_server_options): endpoint, service table, limits.
class BrokerServerOptions {
public:
    explicit BrokerServerOptions(const std::string &endpoint) {
        rp_broker_server_options *p = nullptr;
        detail::check(rp_broker_server_options_new(endpoint.c_str(), &p));
        p_.reset(p);
    }
    /// Adds (or replaces) a service answered with Negotiated{backend_pipe, daemon_version}.
    BrokerServerOptions &add_service(const std::string &name, const std::string &backend_pipe,
                                     const std::string &daemon_version) {
        return set(rp_broker_server_options_add_service(p_.get(), name.c_str(), backend_pipe.c_str(),
                                                        daemon_version.c_str()));
    }
    BrokerServerOptions &allow_version(const std::string &service, const std::string &version) {
        return set(rp_broker_server_options_allow_version(p_.get(), service.c_str(), version.c_str()));
    }
    BrokerServerOptions &block_version(const std::string &service, const std::string &version) {
        return set(rp_broker_server_options_block_version(p_.get(), service.c_str(), version.c_str()));
    }
    BrokerServerOptions &min_version(const std::string &service, const std::string &version) {
        return set(rp_broker_server_options_set_min_version(p_.get(), service.c_str(), version.c_str()));
    }
    /// Offers handoff for `service` to the backend listening on `handoff_endpoint`; issued
    /// tokens also go to `store` when given (the options keep their own reference to it).
    BrokerServerOptions &handoff(const std::string &service, const std::string &handoff_endpoint,
                                 const HandoffStore *store = nullptr) {
        return set(rp_broker_server_options_set_handoff(p_.get(), service.c_str(), handoff_endpoint.c_str(),
                                                        store ? store->capi() : nullptr));
    }
    BrokerServerOptions &allow_other_uids(bool b) {
        return set(rp_broker_server_options_set_allow_other_uids(p_.get(), b));
    }
    /// Lets one group reach a path socket: permission bits (0660) and a group id (-1 keeps the
    /// process's group); see rp_broker_server_options_set_socket_access.
    BrokerServerOptions &socket_access(std::uint32_t mode, std::int64_t group = -1) {
        return set(rp_broker_server_options_set_socket_access(p_.get(), mode, group));
    }
    BrokerServerOptions &rate_limit(std::uint32_t max_hellos, std::chrono::milliseconds window) {
        return set(rp_broker_server_options_set_rate_limit(p_.get(), max_hellos, static_cast<std::uint32_t>(window.count())));
    }
    BrokerServerOptions &hello_timeout(std::chrono::milliseconds t) {
        return set(rp_broker_server_options_set_hello_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    BrokerServerOptions &handoff_ack_timeout(std::chrono::milliseconds t) {
        return set(rp_broker_server_options_set_handoff_ack_timeout_ms(p_.get(), detail::to_ms(t)));
    }
    rp_broker_server_options *release() noexcept { return p_.release(); }

private:
    BrokerServerOptions &set(rp_status st) {
        detail::check(st);
        return *this;
    }
    detail::Owned<rp_broker_server_options, rp_broker_server_options_free> p_;
};

/// A running librp broker (rp_broker_server); destroying it stops it (closing its
/// connections and removing the socket file). const methods are thread-safe.
class BrokerServer {
public:
    /// Binds and starts serving; consumes `options` (even when it throws). Throws rp::Error
    /// (INVALID_ARGUMENT, PERMISSION_DENIED, IO).
    static BrokerServer bind(BrokerServerOptions &options) {
        rp_broker_server *s = nullptr;
        detail::check(rp_broker_server_bind(options.release(), &s));
        return BrokerServer(s);
    }
    static BrokerServer bind(BrokerServerOptions &&options) { return bind(options); }
    explicit BrokerServer(rp_broker_server *s) noexcept : p_(s) {}

    std::string_view endpoint() const noexcept { return detail::view(rp_broker_server_endpoint(p_.get())); }
    /// Refuses every Hello from now on with SHUTTING_DOWN; keeps running until destroyed.
    void begin_shutdown() const noexcept { rp_broker_server_begin_shutdown(p_.get()); }

    rp_broker_server *capi() const noexcept { return p_.get(); }
    rp_broker_server *release() noexcept { return p_.release(); }

private:
    detail::Owned<rp_broker_server, rp_broker_server_free> p_;
};

/// The loaded library's version string.
inline std::string_view version() noexcept { return rp_version_string(); }

// ---------------------------------------------------------------------------------------------
// Sessions: calls both ways over one connection
// ---------------------------------------------------------------------------------------------

/// Which end of the connection a session is (request ids: odd when connecting, even when
/// accepting; the two ends must differ).
enum class SessionSide : int32_t {
    Connecting = RP_SESSION_SIDE_CONNECTING,
    Accepting = RP_SESSION_SIDE_ACCEPTING,
};

namespace detail {
/// Takes an rp_msg's bytes into a vector and frees it.
inline std::vector<std::uint8_t> take_msg(rp_msg *m) {
    Owned<rp_msg, rp_msg_free> guard(m);
    const std::uint8_t *d = rp_msg_data(m);
    return std::vector<std::uint8_t>(d, d + rp_msg_len(m));
}
}  // namespace detail

/// One of the peer's requests, owned until it is answered (move-only). Answer it exactly once
/// with respond() or respond_error(), now or later, from any thread; dropping it unanswered
/// sends the peer an error.
class SessionRequest {
public:
    explicit SessionRequest(rp_session_request *r) noexcept : p_(r) {}

    std::uint64_t id() const noexcept { return rp_session_request_id(p_.get()); }
    /// The consumer protocol the caller gave its payload.
    std::uint32_t payload_protocol() const noexcept { return rp_session_request_payload_protocol(p_.get()); }
    /// Valid while this request is alive.
    Bytes payload() const noexcept { return detail::view(rp_session_request_payload(p_.get())); }
    std::uint64_t deadline_unix_ms() const noexcept { return rp_session_request_deadline_unix_ms(p_.get()); }
    std::string_view traceparent() const noexcept { return detail::view(rp_session_request_traceparent(p_.get())); }
    std::string_view tracestate() const noexcept { return detail::view(rp_session_request_tracestate(p_.get())); }
    /// True once the caller cancelled (or its deadline passed).
    bool is_cancelled() const noexcept { return rp_session_request_is_cancelled(p_.get()); }
    /// Ends one next_chunk() (the one blocked now, or the next): it returns std::nullopt; the
    /// request goes on. Callable from any thread.
    void interrupt() const noexcept { rp_session_request_interrupt(p_.get()); }

    /// Streams one chunk to the caller before the response.
    void send_chunk(Bytes chunk) const {
        detail::check(rp_session_request_send_chunk(p_.get(), detail::ptr_or_null(chunk), chunk.size));
    }
    /// The caller's next tunnel chunk, or std::nullopt when none came within `timeout`. Throws
    /// rp::Error(RP_STATUS_CLOSED) once the caller half-closed.
    std::optional<std::vector<std::uint8_t>> next_chunk(std::chrono::milliseconds timeout) const {
        rp_msg *m = nullptr;
        rp_status st = rp_session_request_next_chunk(p_.get(), detail::to_ms(timeout), &m);
        if (st == RP_STATUS_TIMEOUT || st == RP_STATUS_INTERRUPTED) return std::nullopt;
        detail::check(st);
        return detail::take_msg(m);
    }
    /// Half-closes this side of a tunnel.
    void close_write() const { detail::check(rp_session_request_close_write(p_.get())); }

    /// Answers with `payload`; the request is consumed even when this throws.
    void respond(Bytes payload) {
        detail::check(rp_session_respond(p_.release(), detail::ptr_or_null(payload), payload.size));
    }
    /// Answers with an error (`code`: an rp_status, or an application code above 1000); the
    /// request is consumed even when this throws.
    void respond_error(int32_t code, const std::string &message) {
        detail::check(rp_session_respond_error(p_.release(), code, message.c_str()));
    }

    bool answered() const noexcept { return p_ == nullptr; }
    rp_session_request *capi() const noexcept { return p_.get(); }
    rp_session_request *release() noexcept { return p_.release(); }

private:
    detail::Owned<rp_session_request, rp_session_request_free> p_;
};

/// An asynchronous call (a stream or a tunnel too). Dropping it cancels the call if it has no
/// outcome yet. const methods are thread-safe.
class SessionTicket {
public:
    explicit SessionTicket(rp_session_ticket *t) noexcept : p_(t) {}

    std::uint64_t id() const noexcept { return rp_session_ticket_id(p_.get()); }
    bool is_done() const noexcept { return rp_session_ticket_is_done(p_.get()); }
    /// The response, or std::nullopt when none came within `timeout`. Throws rp::Error with the
    /// peer's error (its message in what()), CLOSED, CANCELLED or TIMEOUT (deadline passed).
    std::optional<std::vector<std::uint8_t>> wait(std::chrono::milliseconds timeout) const {
        rp_msg *m = nullptr;
        rp_status st = rp_session_ticket_wait(p_.get(), detail::to_ms(timeout), &m);
        if ((st == RP_STATUS_TIMEOUT && !is_done()) || st == RP_STATUS_INTERRUPTED) return std::nullopt;
        detail::check(st);
        return detail::take_msg(m);
    }
    /// The next streamed chunk; std::nullopt when none came within `timeout` (or the wait was
    /// interrupted), or when the stream has ended (then `ended` is set, if given, and wait()
    /// gives the response).
    std::optional<std::vector<std::uint8_t>> next_chunk(std::chrono::milliseconds timeout, bool *ended = nullptr) const {
        rp_msg *m = nullptr;
        rp_status st = rp_session_ticket_next_chunk(p_.get(), detail::to_ms(timeout), &m);
        if (ended) *ended = st == RP_STATUS_CLOSED;
        if (st == RP_STATUS_TIMEOUT || st == RP_STATUS_CLOSED || st == RP_STATUS_INTERRUPTED) return std::nullopt;
        detail::check(st);
        return detail::take_msg(m);
    }
    /// Sends one tunnel chunk to the callee.
    void send_chunk(Bytes chunk) const {
        detail::check(rp_session_ticket_send_chunk(p_.get(), detail::ptr_or_null(chunk), chunk.size));
    }
    /// Half-closes this side of a tunnel.
    void close_write() const { detail::check(rp_session_ticket_close_write(p_.get())); }
    /// Cancels the call (the peer is sent CANCEL; waiters throw CANCELLED).
    void cancel() const noexcept { rp_session_ticket_cancel(p_.get()); }
    /// Ends one wait() or next_chunk() (the one blocked now, or the next): it returns
    /// std::nullopt; the call goes on. Callable from any thread.
    void interrupt() const noexcept { rp_session_ticket_interrupt(p_.get()); }

    rp_session_ticket *capi() const noexcept { return p_.get(); }

private:
    detail::Owned<rp_session_ticket, rp_session_ticket_free> p_;
};

/// A session over one connection: both ends call each other, with streams, tunnels, cancel
/// and deadlines. const methods are thread-safe; calls may run on any number of threads.
class Session {
public:
    /// A session over `conn` (consumed, even when this throws) without a dispatcher: the peer's
    /// requests get the "no dispatcher" error.
    static Session over(Conn &&conn, SessionSide side) {
        rp_session *s = nullptr;
        detail::check(rp_session_new(conn.release(), static_cast<rp_session_side>(side), nullptr, nullptr, nullptr, &s));
        return Session(s);
    }
    /// A session over `conn` (consumed, even when this throws) whose dispatcher is any callable
    /// `void(rp::SessionRequest &)`: it runs inside dispatch() on the calling thread; answer the
    /// request there, or move it elsewhere to answer later from any thread. An exception
    /// escaping it answers a request still held there with an error carrying what() (code: the
    /// rp::Error's status, else 1001).
    template <class F> static Session over(Conn &&conn, SessionSide side, F &&dispatcher) {
        using Fn = std::decay_t<F>;
        Fn *box = new Fn(std::forward<F>(dispatcher));
        rp_session *s = nullptr;
        // librp owns box (through delete_box) on every path.
        detail::check(rp_session_new(conn.release(), static_cast<rp_session_side>(side), &dispatch_tramp<Fn>, box,
                                     &detail::delete_box<Fn>, &s));
        return Session(s);
    }
    explicit Session(rp_session *s) noexcept : p_(s) {}

    /// Calls the peer and waits up to `timeout` for its answer (also sent as the deadline);
    /// std::nullopt when the time ran out. Throws rp::Error with the peer's error, CLOSED, ...
    std::optional<std::vector<std::uint8_t>> call(std::uint32_t protocol, Bytes payload,
                                                  std::chrono::milliseconds timeout) const {
        rp_msg *m = nullptr;
        rp_status st = rp_session_call(p_.get(), protocol, detail::ptr_or_null(payload), payload.size, nullptr,
                                       detail::to_ms(timeout), &m);
        if (st == RP_STATUS_TIMEOUT) return std::nullopt;
        detail::check(st);
        return detail::take_msg(m);
    }
    /// Starts a call (for async use, streams and tunnels) and returns at once.
    SessionTicket call_start(std::uint32_t protocol, Bytes payload) const {
        rp_session_ticket *t = nullptr;
        detail::check(rp_session_call_start(p_.get(), protocol, detail::ptr_or_null(payload), payload.size,
                                            nullptr, &t));
        return SessionTicket(t);
    }
    /// Runs the dispatcher for the peer's pending requests on this thread; returns how many
    /// (0: none came within `timeout`).
    std::size_t dispatch(std::chrono::milliseconds timeout) const {
        std::size_t n = 0;
        rp_status st = rp_session_dispatch(p_.get(), detail::to_ms(timeout), &n);
        if (st == RP_STATUS_TIMEOUT) return 0;
        detail::check(st);
        return n;
    }
    /// Readable (level-triggered) while requests wait for dispatch(). Owned by the session.
    int dispatch_fd() const noexcept { return rp_session_dispatch_fd(p_.get()); }
    /// The subject ("CN=...,O=...") of the peer's verified certificate over TLS; empty over
    /// Unix sockets and TCP. Valid while the session lives.
    std::string_view tls_subject() const noexcept { return detail::view(rp_session_tls_subject(p_.get())); }
    /// Closes the session: every waiting call and stream ends CLOSED. Idempotent, any thread.
    void close() const noexcept { rp_session_close(p_.get()); }

    rp_session *capi() const noexcept { return p_.get(); }

private:
    template <class Fn> static void dispatch_tramp(void *ud, rp_session_request *r) noexcept {
        SessionRequest request(r);
        int32_t code = 0;
        std::string what;
        try {
            (*static_cast<Fn *>(ud))(request);
            return;
        } catch (const Error &e) {
            code = static_cast<int32_t>(e.status());
            what = e.what();
        } catch (const std::exception &e) {
            code = 1001;
            what = e.what();
        } catch (...) {
            code = 1001;
            what = "unknown exception";
        }
        // A request the callable moved away is its to answer; one still here gets the text.
        if (!request.answered()) {
            try {
                request.respond_error(code, what);
            } catch (...) {
            }
        }
    }
    detail::Owned<rp_session, rp_session_free> p_;
};

// ----------------------------------------------------------------------------------------------
// Logs and statistics
// ----------------------------------------------------------------------------------------------

/// How much a log event matters (rp_log_level).
enum class LogLevel : int32_t { off = 0, error = 1, warn = 2, info = 3, debug = 4 };

/// Sets the process-wide log callback: any callable `void(LogLevel, std::string_view component,
/// std::string_view message)`, receiving the events at `max_level` and more severe. The views
/// live only during the call. It runs on librp's threads (the push server's and broker's event
/// loops, a session's reader) as well as the application's, possibly on several at once, so it
/// must be thread-safe; it may call back into librp. An exception it throws is swallowed (no
/// librp call waits for the callback). The callable is destroyed when replaced or cleared.
template <class F> void set_log(LogLevel max_level, F &&callback) {
    using Fn = std::decay_t<F>;
    struct Tramp {
        static void call(void *ud, rp_log_level level, const char *component, const char *message) noexcept {
            try {
                (*static_cast<Fn *>(ud))(static_cast<LogLevel>(level), std::string_view(component),
                                         std::string_view(message));
            } catch (...) {
            }
        }
    };
    Fn *box = new Fn(std::forward<F>(callback));
    rp_status st = rp_log_set(static_cast<int32_t>(max_level), &Tramp::call, box, &detail::delete_box<Fn>);
    if (st != RP_STATUS_OK) {
        delete box;  // not taken on failure
        detail::throw_status(st);
    }
}

/// Clears the log callback (librp is silent again).
inline void clear_log() { detail::check(rp_log_set(0, nullptr, nullptr, nullptr)); }

/// Statistics are librp's plain C structs; see rp.h for what each field counts.
using PushServerStats = rp_push_server_stats;
using PushWorkerStats = rp_push_worker_stats;
using BrokerServerStats = rp_broker_server_stats;
using SessionStats = rp_session_stats;

namespace detail {
template <class S, class H> S read_stats(rp_status (*get)(const H *, S *), const H *handle) {
    S s{};
    s.size = sizeof s;
    check(get(handle, &s));
    return s;
}
}  // namespace detail

/// What a push server did since it was bound. Thread-safe.
inline PushServerStats stats(const PushServer &s) {
    return detail::read_stats(rp_push_server_get_stats, static_cast<const rp_push_server *>(s.capi()));
}
/// What a push worker did since it connected. Thread-safe.
inline PushWorkerStats stats(const Worker &c) {
    return detail::read_stats(rp_push_worker_get_stats, static_cast<const rp_push_worker *>(c.capi()));
}
/// What a broker server did since it was bound (the METRICS admin verb reports the same).
inline BrokerServerStats stats(const BrokerServer &b) {
    return detail::read_stats(rp_broker_server_get_stats, static_cast<const rp_broker_server *>(b.capi()));
}
/// What a session did since it started. Thread-safe.
inline SessionStats stats(const Session &s) {
    return detail::read_stats(rp_session_get_stats, static_cast<const rp_session *>(s.capi()));
}

}  // namespace rp

#endif  // RP_RP_HPP
