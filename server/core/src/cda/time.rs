//! HL7 v3 `TS` timestamps: `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`, kept at their precision.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CDA timestamp with the precision the document gave. Serialised as ISO 8601 truncated to that
/// precision (`2021-01-04`, `2021-01-04T07:35+01:00`, ...), which sorts correctly as text when the
/// offsets agree and is what the UI and the JSON contract show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CdaTime {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
    pub hour: Option<u8>,
    pub minute: Option<u8>,
    pub second: Option<u8>,
    /// Offset from UTC in minutes, when given.
    pub offset_minutes: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HL7 timestamp {0:?}")]
pub struct TimeError(pub String);

impl CdaTime {
    /// Parses an HL7 `TS` value.
    pub fn parse_hl7(raw: &str) -> Result<CdaTime, TimeError> {
        let err = || TimeError(raw.chars().take(40).collect());
        let raw = raw.trim();
        let (body, offset) = match raw.find(['+', '-']) {
            Some(i) => (&raw[..i], Some(&raw[i..])),
            None => (raw, None),
        };
        let (digits, _fraction) = match body.find('.') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        if digits.len() < 4 || digits.len() > 14 || digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let field = |start: usize| -> Option<u8> { digits.get(start..start + 2).map(|s| s.parse().unwrap_or(0)) };
        let year: u16 = digits[..4].parse().map_err(|_| err())?;
        let time = CdaTime {
            year,
            month: field(4),
            day: field(6),
            hour: field(8),
            minute: field(10),
            second: field(12),
            offset_minutes: match offset {
                None => None,
                Some(o) => {
                    let sign: i16 = if o.starts_with('-') { -1 } else { 1 };
                    let d = &o[1..];
                    if d.len() != 4 || !d.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(err());
                    }
                    let h: i16 = d[..2].parse().map_err(|_| err())?;
                    let m: i16 = d[2..].parse().map_err(|_| err())?;
                    if h > 14 || m > 59 {
                        return Err(err());
                    }
                    Some(sign * (h * 60 + m))
                }
            },
        };
        let valid = time.month.is_none_or(|m| (1..=12).contains(&m))
            && time.day.is_none_or(|d| (1..=days_in_month(year, time.month.unwrap_or(1))).contains(&d))
            && time.hour.is_none_or(|h| h <= 23)
            && time.minute.is_none_or(|m| m <= 59)
            && time.second.is_none_or(|s| s <= 60);
        if !valid {
            return Err(err());
        }
        Ok(time)
    }

    /// Seconds since 1970-01-01T00:00Z, missing parts taken as their first value and a missing
    /// offset as UTC. Used to order and space points; never shown.
    pub fn epoch_seconds(&self) -> i64 {
        let days = days_from_civil(self.year as i64, self.month.unwrap_or(1) as i64, self.day.unwrap_or(1) as i64);
        let secs =
            days * 86_400 + self.hour.unwrap_or(0) as i64 * 3600 + self.minute.unwrap_or(0) as i64 * 60 + self.second.unwrap_or(0) as i64;
        secs - self.offset_minutes.unwrap_or(0) as i64 * 60
    }

    /// The calendar date part, as `YYYY-MM-DD` (or shorter at lower precision).
    pub fn date_string(&self) -> String {
        let mut s = format!("{:04}", self.year);
        if let Some(m) = self.month {
            s.push_str(&format!("-{m:02}"));
            if let Some(d) = self.day {
                s.push_str(&format!("-{d:02}"));
            }
        }
        s
    }
}

/// The civil date (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// algorithm; the inverse of the day count [`CdaTime::epoch_seconds`] uses).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u8, d as u8)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for CdaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.date_string())?;
        if let (Some(_), Some(h)) = (self.day, self.hour) {
            write!(f, "T{h:02}:{:02}", self.minute.unwrap_or(0))?;
            if let Some(s) = self.second {
                write!(f, ":{s:02}")?;
            }
            match self.offset_minutes {
                Some(0) => f.write_str("Z")?,
                Some(o) => {
                    let sign = if o < 0 { '-' } else { '+' };
                    write!(f, "{sign}{:02}:{:02}", o.abs() / 60, o.abs() % 60)?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl Serialize for CdaTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CdaTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        CdaTime::parse_iso(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid time {s:?}")))
    }
}

impl CdaTime {
    /// Reads back what `Display` writes.
    pub fn parse_iso(s: &str) -> Option<CdaTime> {
        let (date, rest) = s.split_once('T').map_or((s, None), |(d, r)| (d, Some(r)));
        let mut hl7: String = date.chars().filter(|c| *c != '-').collect();
        if let Some(rest) = rest {
            let (clock, offset) = match rest.find(['+', '-', 'Z']) {
                Some(i) => (&rest[..i], Some(&rest[i..])),
                None => (rest, None),
            };
            hl7.extend(clock.chars().filter(|c| *c != ':'));
            match offset {
                Some("Z") => hl7.push_str("+0000"),
                Some(o) => hl7.extend(o.chars().filter(|c| *c != ':')),
                None => {}
            }
        }
        CdaTime::parse_hl7(&hl7).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_precision_and_offset() {
        let t = CdaTime::parse_hl7("202101040735+0100").unwrap();
        assert_eq!(t.to_string(), "2021-01-04T07:35+01:00");
        assert_eq!(CdaTime::parse_hl7("19790328").unwrap().to_string(), "1979-03-28");
        assert_eq!(CdaTime::parse_hl7("20210104160527+0000").unwrap().to_string(), "2021-01-04T16:05:27Z");
        assert_eq!(CdaTime::parse_hl7("2021").unwrap().to_string(), "2021");
    }

    #[test]
    fn round_trips_through_iso() {
        for raw in ["202101040735+0100", "19790328", "20210104160527-0230", "202102"] {
            let t = CdaTime::parse_hl7(raw).unwrap();
            assert_eq!(CdaTime::parse_iso(&t.to_string()), Some(t), "{raw}");
        }
    }

    #[test]
    fn refuses_impossible_dates() {
        for raw in ["20210230", "20211301", "2021010425", "abc", "20210104+99", "", "202101041"] {
            assert!(CdaTime::parse_hl7(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn civil_dates_and_day_counts_are_inverse() {
        for raw in ["19700101", "20000229", "20261126", "19000301", "21001231"] {
            let t = CdaTime::parse_hl7(raw).unwrap();
            let (y, m, d) = civil_from_days(t.epoch_seconds().div_euclid(86_400));
            assert_eq!((y as u16, Some(m), Some(d)), (t.year, t.month, t.day), "{raw}");
        }
    }

    #[test]
    fn orders_by_instant_across_offsets() {
        let paris = CdaTime::parse_hl7("202101040800+0100").unwrap();
        let utc = CdaTime::parse_hl7("202101040730+0000").unwrap();
        assert!(paris.epoch_seconds() < utc.epoch_seconds());
        assert_eq!(CdaTime::parse_hl7("19700101000000+0000").unwrap().epoch_seconds(), 0);
    }
}
