//! Durations as users write them on the command line and in `SHIM_*` variables: Go's grammar
//! (`time.ParseDuration`, what Docker's `--stop-timeout`-style flags and Compose's
//! `stop_grace_period` take), plus a bare number meaning seconds.
//!
//! - A duration is a sequence of decimal numbers, each with a unit: `10s`, `1.5s`, `.5s`,
//!   `2h45m`, `1m30.5s`. Units: `ns`, `us` (also `µs` and `μs`), `ms`, `s`, `m`, `h`.
//! - A number alone is seconds: `7`, `1.5`, `0`.
//! - A leading `+` is allowed, as in Go; a negative duration is refused (`-0` is zero).
//! - At most [`MAX`], Go's limit (2^63-1 nanoseconds, about 292 years), for every form.
//! - shim keeps durations to the nanosecond, the unit of the timespec its timer
//!   (`rt_sigtimedwait`) takes; a part finer than that rounds up, so a duration written
//!   non-zero never becomes zero (`1ns` is a grace period, not none).

use std::time::Duration;

/// The longest duration shim takes: Go's `time.Duration` limit, so anything Docker or Compose
/// accepts is accepted here too.
pub const MAX: Duration = Duration::from_nanos(i64::MAX as u64);

/// [`MAX`] as it is written, for the error that names it.
const MAX_TEXT: &str = "2562047h47m16.854775807s, about 292 years";

const EXAMPLES: &str = "try 10s, 1.5s, 500ms or 1m30s";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parse a duration. The error is a fragment for a usage message.
pub fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err(format!("empty duration ({EXAMPLES})"));
    }
    let malformed = || format!("invalid duration '{text}' ({EXAMPLES})");
    let (negative, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut nanos: u128 = 0;
    let mut rest = body;
    loop {
        let (number, after) = Number::take(rest).ok_or_else(malformed)?;
        // As in Go, the unit is everything up to the next number.
        let unit_len = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos = match unit {
            "" if rest.len() == body.len() && after.is_empty() => NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "missing unit after '{}' in '{text}' (a bare number is seconds only alone)",
                    number.text
                ))
            }
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "e" | "E" | "e+" | "E+" | "e-" | "E-" if after.starts_with(|c: char| c.is_ascii_digit()) => {
                return Err(format!("'{text}': exponents are not accepted (write 1000s, not 1e3s)"));
            }
            _ => return Err(format!("unknown unit '{unit}' in '{text}' (units: ns, us, ms, s, m, h)")),
        };
        nanos = nanos.saturating_add(number.nanos(unit_nanos));
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    if negative && nanos > 0 {
        return Err(format!("'{text}' is negative"));
    }
    if nanos > MAX.as_nanos() {
        return Err(format!("'{text}' is too large (at most {MAX_TEXT})"));
    }
    // Within MAX, so within u64.
    Ok(Duration::from_nanos(nanos as u64))
}

/// One decimal number of a duration: `1`, `1.5`, `.5`, `1.`.
struct Number<'a> {
    /// The number as written, for messages.
    text: &'a str,
    /// The whole part; saturates far above any limit rather than wrapping.
    whole: u128,
    /// The digits after the point.
    fraction: &'a str,
}

impl<'a> Number<'a> {
    /// The number at the start of `text` and what follows it, if `text` starts with one.
    fn take(text: &'a str) -> Option<(Number<'a>, &'a str)> {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let whole_len = digits(text);
        let (fraction, len) = match text[whole_len..].strip_prefix('.') {
            Some(after_point) => {
                let n = digits(after_point);
                (&after_point[..n], whole_len + 1 + n)
            }
            None => ("", whole_len),
        };
        if whole_len == 0 && fraction.is_empty() {
            return None;
        }
        let whole =
            text[..whole_len].bytes().fold(0u128, |n, d| n.saturating_mul(10).saturating_add(u128::from(d - b'0')));
        Some((Number { text: &text[..len], whole, fraction }, &text[len..]))
    }

    /// The number of nanoseconds in this many `unit_nanos`, any fraction of a nanosecond
    /// rounded up.
    fn nanos(&self, unit_nanos: u128) -> u128 {
        // 20 digits are finer than a nanosecond of an hour (3.6e12 ns) and keep the product
        // within u128; beyond them, only whether any digit is non-zero still matters.
        const KEPT: usize = 20;
        let kept = &self.fraction[..self.fraction.len().min(KEPT)];
        let dropped_nonzero = self.fraction.bytes().skip(KEPT).any(|d| d != b'0');
        let numerator = kept.bytes().fold(0u128, |n, d| n * 10 + u128::from(d - b'0')) * unit_nanos;
        let denominator = 10u128.pow(kept.len() as u32);
        let mut part = numerator / denominator;
        if numerator % denominator != 0 || dropped_nonzero {
            part += 1;
        }
        self.whole.saturating_mul(unit_nanos).saturating_add(part)
    }
}

/// Format a duration compactly for logs: `10s`, `1.5s`, `250ms`, `1.5us`, `1ns`. The largest
/// unit from seconds down that fits, with at most three decimals (cut, not rounded up).
pub fn display(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (unit_nanos, unit) = match nanos {
        0 => return "0s".into(),
        n if n >= NANOS_PER_SEC => (NANOS_PER_SEC, "s"),
        n if n >= 1_000_000 => (1_000_000, "ms"),
        n if n >= 1_000 => (1_000, "us"),
        _ => (1, "ns"),
    };
    let whole = nanos / unit_nanos;
    let thousandths = nanos % unit_nanos * 1000 / unit_nanos;
    if thousandths == 0 {
        format!("{whole}{unit}")
    } else {
        let decimals = format!("{thousandths:03}");
        format!("{whole}.{}{unit}", decimals.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("7ns"), Ok(ns(7)));
        assert_eq!(parse("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("7\u{b5}s"), Ok(Duration::from_micros(7)), "micro sign");
        assert_eq!(parse("7\u{3bc}s"), Ok(Duration::from_micros(7)), "Greek mu");
        assert_eq!(parse("7ms"), Ok(Duration::from_millis(7)));
        assert_eq!(parse("7s"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("7m"), Ok(Duration::from_secs(7 * 60)));
        assert_eq!(parse("7h"), Ok(Duration::from_secs(7 * 3600)));
    }

    #[test]
    fn parses_fractions_and_sequences() {
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("0.25h"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1.000000001s"), Ok(ns(1_000_000_001)));
        assert_eq!(parse("2h45m"), Ok(Duration::from_secs(2 * 3600 + 45 * 60)));
        assert_eq!(parse("1m30.5s"), Ok(Duration::from_millis(90_500)));
        assert_eq!(parse("1h1m1s1ms1us1ns"), Ok(ns(3_661_001_001_001)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1s1s"), Ok(Duration::from_secs(2)), "a unit may repeat, as in Go");
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("+7"), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn signs_as_go_takes_them() {
        assert_eq!(parse("+1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("-0"), Ok(Duration::ZERO));
        assert_eq!(parse("-0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn finer_than_a_nanosecond_rounds_up_never_to_zero() {
        assert_eq!(parse("1ns"), Ok(ns(1)));
        assert_eq!(parse("0.1ns"), Ok(ns(1)));
        assert_eq!(parse("1.5ns"), Ok(ns(2)));
        assert_eq!(parse("0.0000000001s"), Ok(ns(1)));
        assert_eq!(parse("0.0000000000000000000000000001h"), Ok(ns(1)), "beyond the digits kept");
        assert_eq!(parse("0.000000000000000000000000000h"), Ok(Duration::ZERO));
        assert_eq!(parse("1.0000000000000000000000000000s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn one_limit_for_every_form() {
        assert_eq!(parse("2562047h47m16.854775807s"), Ok(MAX));
        assert_eq!(parse("9223372036854775807ns"), Ok(MAX));
        assert_eq!(parse("9223372036.854775807"), Ok(MAX));
        for too_large in [
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "9223372036.8547758071",
            "9223372037",
            "2562048h",
            "18446744073709551615",
            "18446744073709551615h",
            "99999999999999999999999999999999999999999999999999h",
            "2562047h2562047h",
        ] {
            assert_eq!(
                parse(too_large),
                Err(format!("'{too_large}' is too large (at most 2562047h47m16.854775807s, about 292 years)"))
            );
        }
        // What used to be capped at u32 units goes as far as the one limit.
        assert_eq!(parse("4294967296ms"), Ok(Duration::from_millis(4_294_967_296)));
        assert_eq!(parse("4294967296s"), Ok(Duration::from_secs(4_294_967_296)));
    }

    #[test]
    fn rejects_each_mistake_saying_what_it_is() {
        let cases = [
            ("", "empty duration (try 10s, 1.5s, 500ms or 1m30s)"),
            ("-1s", "'-1s' is negative"),
            ("-1", "'-1' is negative"),
            ("-.5ms", "'-.5ms' is negative"),
            ("1x", "unknown unit 'x' in '1x' (units: ns, us, ms, s, m, h)"),
            ("10S", "unknown unit 'S' in '10S' (units: ns, us, ms, s, m, h)"),
            ("1sec", "unknown unit 'sec' in '1sec' (units: ns, us, ms, s, m, h)"),
            ("1s ", "unknown unit 's ' in '1s ' (units: ns, us, ms, s, m, h)"),
            ("1d", "unknown unit 'd' in '1d' (units: ns, us, ms, s, m, h)"),
            ("1e3", "'1e3': exponents are not accepted (write 1000s, not 1e3s)"),
            ("1.5E-3s", "'1.5E-3s': exponents are not accepted (write 1000s, not 1e3s)"),
            ("1m30", "missing unit after '30' in '1m30' (a bare number is seconds only alone)"),
            ("1.5s2", "missing unit after '2' in '1.5s2' (a bare number is seconds only alone)"),
            ("soon", "invalid duration 'soon' (try 10s, 1.5s, 500ms or 1m30s)"),
            ("s", "invalid duration 's' (try 10s, 1.5s, 500ms or 1m30s)"),
            (".", "invalid duration '.' (try 10s, 1.5s, 500ms or 1m30s)"),
            (".s", "invalid duration '.s' (try 10s, 1.5s, 500ms or 1m30s)"),
            ("-", "invalid duration '-' (try 10s, 1.5s, 500ms or 1m30s)"),
            ("+", "invalid duration '+' (try 10s, 1.5s, 500ms or 1m30s)"),
            ("--1s", "invalid duration '--1s' (try 10s, 1.5s, 500ms or 1m30s)"),
            (" 1s", "invalid duration ' 1s' (try 10s, 1.5s, 500ms or 1m30s)"),
            ("1..5s", "missing unit after '1.' in '1..5s' (a bare number is seconds only alone)"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want.to_string()), "{text:?}");
        }
    }

    #[test]
    fn displays_compactly_and_exactly_to_three_decimals() {
        assert_eq!(display(Duration::from_secs(10)), "10s");
        assert_eq!(display(Duration::from_secs(90)), "90s");
        assert_eq!(display(Duration::from_millis(1500)), "1.5s");
        assert_eq!(display(Duration::from_millis(1259)), "1.259s");
        assert_eq!(display(ns(1_259_999_999)), "1.259s", "cut, not rounded up");
        assert_eq!(display(Duration::from_millis(250)), "250ms");
        assert_eq!(display(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(display(Duration::from_micros(40)), "40us");
        assert_eq!(display(ns(1500)), "1.5us");
        assert_eq!(display(ns(1)), "1ns");
        assert_eq!(display(ns(999)), "999ns");
        assert_eq!(display(Duration::ZERO), "0s");
        assert_eq!(display(MAX), "9223372036.854s");
    }

    #[test]
    fn what_display_writes_parses_back() {
        for d in [ns(1), ns(1500), Duration::from_micros(40), Duration::from_millis(250), Duration::from_millis(1500)] {
            assert_eq!(parse(&display(d)), Ok(d));
        }
    }
}
