//! The clinician's time zone: every instant the interface shows is written in it.
//!
//! The server writes instants as RFC 9557 strings, an RFC 3339 local time with its offset and
//! the zone's name in brackets (`2026-03-29T03:30:00+02:00[Europe/Paris]`): the browser only
//! reads the wall-clock part and labels it with the zone (`heure de Paris`), so the time zone
//! database stays on the server and out of the browser bundle. Sampling and report times of
//! documents carry their own offset; they are moved to the same zone, keeping their precision.

use chrono::{DateTime, Datelike, Offset, Timelike, Utc};
use chrono_tz::Tz;

use bioviewer_core::cda::CdaTime;
use bioviewer_core::normalise::History;

/// Where times are shown (`--time-zone`, `BIOVIEWER_TIME_ZONE`): Europe/Paris unless set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalZone(Tz);

impl Default for LocalZone {
    fn default() -> Self {
        LocalZone(chrono_tz::Europe::Paris)
    }
}

impl std::str::FromStr for LocalZone {
    type Err = String;

    /// An IANA zone name (`Europe/Paris`, `America/Cayenne`, `UTC`).
    fn from_str(name: &str) -> Result<LocalZone, String> {
        name.trim().parse::<Tz>().map(LocalZone).map_err(|_| format!("unknown time zone {name:?} (an IANA name such as Europe/Paris)"))
    }
}

impl LocalZone {
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    fn write(&self, instant: DateTime<Utc>) -> String {
        let local = instant.with_timezone(&self.0);
        format!("{}[{}]", local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false), self.0.name())
    }

    /// Seconds since the epoch, as this zone's local time (RFC 9557).
    pub fn epoch(&self, epoch: i64) -> String {
        DateTime::from_timestamp(epoch, 0).map(|t| self.write(t)).unwrap_or_default()
    }

    /// An RFC 3339 instant (in any offset) as this zone's local time (RFC 9557); anything else
    /// (empty, a bare date) comes back unchanged.
    pub fn rfc3339(&self, instant: &str) -> String {
        match DateTime::parse_from_rfc3339(instant) {
            Ok(t) => self.write(t.with_timezone(&Utc)),
            Err(_) => instant.to_string(),
        }
    }

    /// A document's time as the same instant in this zone, at the precision the document gave.
    /// A time without its offset (the laboratory's local time, zone unsaid) or without an hour
    /// is left as written: moving it would invent what the document does not say.
    pub fn cda(&self, time: CdaTime) -> CdaTime {
        let (Some(_), Some(_), Some(_)) = (time.day, time.hour, time.offset_minutes) else { return time };
        let Some(utc) = DateTime::from_timestamp(time.epoch_seconds(), 0) else { return time };
        let local = utc.with_timezone(&self.0);
        CdaTime {
            year: u16::try_from(local.year()).unwrap_or(time.year),
            month: Some(local.month() as u8),
            day: Some(local.day() as u8),
            hour: Some(local.hour() as u8),
            minute: time.minute.map(|_| local.minute() as u8),
            second: time.second.map(|_| local.second() as u8),
            offset_minutes: Some((local.offset().fix().local_minus_utc() / 60) as i16),
        }
    }

    /// A document's time for the interface: moved to this zone and, when it has a clock, named
    /// by the zone (RFC 9557, `2021-01-04T07:35:00+01:00[Europe/Paris]`); a date alone, or a
    /// time without its offset, as written.
    pub fn cda_labelled(&self, time: CdaTime) -> String {
        let moved = self.cda(time);
        match (moved.hour, moved.offset_minutes) {
            (Some(_), Some(_)) if time.offset_minutes.is_some() => format!("{moved}[{}]", self.0.name()),
            _ => moved.to_string(),
        }
    }

    /// Every report and sampling time of a history, in this zone (the interface's copy; the
    /// JSON, CSV and FHIR exports keep the documents' own offsets).
    pub fn history(&self, history: &mut History) {
        for document in &mut history.documents {
            document.effective_time = document.effective_time.map(|t| self.cda(t));
        }
        let points = history.series.iter_mut().flat_map(|s| s.points.iter_mut());
        let others = history.other_results.iter_mut().flat_map(|o| o.points.iter_mut());
        for point in points.chain(others) {
            point.time = point.time.map(|t| self.cda(t));
        }
        for target in &mut history.targets {
            target.set_at = self.rfc3339(&target.set_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(iso: &str) -> i64 {
        DateTime::parse_from_rfc3339(iso).unwrap().timestamp()
    }

    /// Paris moves to summer time at 01:00 UTC on the last Sunday of March and back at 01:00
    /// UTC on the last Sunday of October: the instants around both show the right wall clock.
    #[test]
    fn paris_time_follows_summer_time_in_march_and_october() {
        let paris = LocalZone::default();
        assert_eq!(paris.epoch(epoch("2026-03-29T00:59:00Z")), "2026-03-29T01:59:00+01:00[Europe/Paris]");
        assert_eq!(paris.epoch(epoch("2026-03-29T01:00:00Z")), "2026-03-29T03:00:00+02:00[Europe/Paris]");
        assert_eq!(paris.epoch(epoch("2026-10-25T00:59:00Z")), "2026-10-25T02:59:00+02:00[Europe/Paris]");
        assert_eq!(paris.epoch(epoch("2026-10-25T01:00:00Z")), "2026-10-25T02:00:00+01:00[Europe/Paris]");
        assert_eq!(paris.rfc3339("2026-07-14T22:30:00Z"), "2026-07-15T00:30:00+02:00[Europe/Paris]", "the local day, not UTC's");
        assert_eq!(paris.rfc3339(""), "", "no time stays no time");
    }

    #[test]
    fn another_zone_is_configurable_and_a_wrong_name_is_refused() {
        let cayenne: LocalZone = "America/Cayenne".parse().unwrap();
        assert_eq!(cayenne.epoch(epoch("2026-01-04T12:00:00Z")), "2026-01-04T09:00:00-03:00[America/Cayenne]");
        assert!("Europe/Pariss".parse::<LocalZone>().is_err());
    }

    /// A sampling time in UTC or in another offset shows in Paris time; a time with no offset
    /// or no hour is left as the laboratory wrote it.
    #[test]
    fn document_times_move_to_the_zone_keeping_their_precision() {
        let paris = LocalZone::default();
        let at = |raw: &str| paris.cda(CdaTime::parse_hl7(raw).unwrap()).to_string();
        assert_eq!(at("20260329013000+0000"), "2026-03-29T03:30:00+02:00");
        assert_eq!(at("20261024233000-0100"), "2026-10-25T02:30:00+02:00", "before the change back");
        assert_eq!(at("20261025013000+0000"), "2026-10-25T02:30:00+01:00", "after the change back");
        assert_eq!(at("202610250130+0000"), "2026-10-25T02:30+01:00", "no seconds given, none shown");
        assert_eq!(at("20210104073500+0100"), "2021-01-04T07:35:00+01:00", "already Paris time: unchanged");
        assert_eq!(at("202101040735"), "2021-01-04T07:35", "no offset: unchanged");
        assert_eq!(at("20210104"), "2021-01-04");
        let labelled = |raw: &str| paris.cda_labelled(CdaTime::parse_hl7(raw).unwrap());
        assert_eq!(labelled("20260329013000+0000"), "2026-03-29T03:30:00+02:00[Europe/Paris]");
        assert_eq!(labelled("202101040735"), "2021-01-04T07:35", "a clock of an unsaid zone is not named");
        assert_eq!(labelled("20210104"), "2021-01-04");
    }
}
