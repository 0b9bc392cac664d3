//! How attributes are printed for people, shared by the shell (`ls`, `stat`, `du -h`) and the
//! NameNode's web UI so the two always agree.

/// `rwxr-xr-x` (with `t` for the sticky bit).
pub fn mode_string(p: u32) -> String {
    let mut s = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let b = (p >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    let mut chars: Vec<char> = s.chars().collect();
    for (bit, at, on, off) in [
        (0o4000, 2, 's', 'S'),
        (0o2000, 5, 's', 'S'),
        (0o1000, 8, 't', 'T'),
    ] {
        if p & bit != 0 {
            chars[at] = if chars[at] == 'x' { on } else { off };
        }
    }
    chars.into_iter().collect()
}

/// Bytes, or with `human` one decimal and a binary unit as `hdfs dfs -h` prints.
pub fn size(n: u64, human: bool) -> String {
    if !human || n < 1024 {
        return n.to_string();
    }
    let units = ["K", "M", "G", "T", "P", "E"];
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// A moment (milliseconds since the epoch) in UTC: year, month, day, hour, minute, second.
pub fn utc(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (y, mo as u32, d as u32, h as u32, m as u32, s as u32)
}

/// Milliseconds since the epoch of a UTC date and time (the inverse of [`utc`]).
pub fn from_utc(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> u64 {
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((mo + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    u64::try_from(secs).unwrap_or(0) * 1000
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn date(ms: u64) -> String {
    let (y, mo, d, h, m, _) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_sizes_and_dates() {
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
        assert_eq!(mode_string(0o6644), "rwSr-Sr--");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(size(1536, true), "1.5 K");
        assert_eq!(size(1536, false), "1536");
        assert_eq!(date(0), "1970-01-01 00:00");
        assert_eq!(date(1_763_731_200_000), "2025-11-21 13:20");
        for ms in [0, 951_782_400_000, 1_763_731_259_000, 4_102_444_800_000] {
            let (y, mo, d, h, mi, s) = utc(ms);
            assert_eq!(from_utc(y, mo, d, h, mi, s), ms);
        }
    }
}
