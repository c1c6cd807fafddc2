//! A journey's `viewport`, `device` and `network` keys: the device presets and network
//! presets they name, and their parsing into the [`Emulation`] a run applies to its own tab
//! (and records with its result).

use crate::run::{Emulation, NetworkConditions};

/// A phone or tablet as browsers' device toolbars describe it.
#[derive(Debug)]
pub struct Device {
    pub name: &'static str,
    pub viewport: (u32, u32),
    pub device_pixel_ratio: f64,
    pub user_agent: &'static str,
}

const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const IPAD_UA: &str = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

/// The presets `device:` accepts (sizes and ratios as Chrome DevTools' device list has them).
pub const DEVICES: &[Device] = &[
    Device {
        name: "iphone-se",
        viewport: (375, 667),
        device_pixel_ratio: 2.0,
        user_agent: IPHONE_UA,
    },
    Device {
        name: "iphone-14",
        viewport: (390, 844),
        device_pixel_ratio: 3.0,
        user_agent: IPHONE_UA,
    },
    Device {
        name: "iphone-15-pro-max",
        viewport: (430, 932),
        device_pixel_ratio: 3.0,
        user_agent: IPHONE_UA,
    },
    Device {
        name: "ipad-mini",
        viewport: (768, 1024),
        device_pixel_ratio: 2.0,
        user_agent: IPAD_UA,
    },
    Device {
        name: "pixel-5",
        viewport: (393, 851),
        device_pixel_ratio: 2.75,
        user_agent: "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    },
    Device {
        name: "pixel-7",
        viewport: (412, 915),
        device_pixel_ratio: 2.625,
        user_agent: "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    },
];

/// `throttle:` presets: WebPageTest's connectivity profiles of the same names (round trip,
/// download and upload).
pub const THROTTLES: &[(&str, u64, u64, u64)] = &[("3g", 300, 1600, 768), ("4g", 170, 9000, 9000)];

/// A viewport as written: `WxH`, each 100 to 10000 CSS pixels.
pub fn parse_viewport(raw: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{raw}` is not a viewport: write it as WIDTHxHEIGHT, e.g. `390x844`");
    let (w, h) = raw.split_once('x').ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    for v in [w, h] {
        if !(100..=10000).contains(&v) {
            return Err(format!("`{raw}`: each side is 100 to 10000 pixels"));
        }
    }
    Ok((w, h))
}

pub fn device(name: &str) -> Result<&'static Device, String> {
    DEVICES.iter().find(|d| d.name == name).ok_or_else(|| {
        format!(
            "unknown device `{name}`; one of: {}",
            DEVICES
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

pub fn throttle(name: &str) -> Result<NetworkConditions, String> {
    THROTTLES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(n, latency_ms, down_kbps, up_kbps)| NetworkConditions {
            preset: Some(n.to_string()),
            offline: false,
            latency_ms: *latency_ms,
            down_kbps: *down_kbps,
            up_kbps: *up_kbps,
        })
        .ok_or_else(|| {
            format!(
                "unknown throttle `{name}`; one of: {}, or `{{latency_ms, down_kbps, up_kbps}}`",
                THROTTLES.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            )
        })
}

/// A device preset as the run applies it.
pub fn of_device(d: &Device) -> Emulation {
    Emulation {
        device: Some(d.name.to_string()),
        viewport: Some(d.viewport),
        device_pixel_ratio: Some(d.device_pixel_ratio),
        user_agent: Some(d.user_agent.to_string()),
        mobile: true,
        network: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewports_devices_and_throttles() {
        assert_eq!(parse_viewport("390x844"), Ok((390, 844)));
        assert!(parse_viewport("390").is_err());
        assert!(
            parse_viewport("10x844")
                .unwrap_err()
                .contains("100 to 10000")
        );
        assert_eq!(device("pixel-7").unwrap().viewport, (412, 915));
        assert!(device("nokia-3310").unwrap_err().contains("iphone-se"));
        assert_eq!(throttle("3g").unwrap().latency_ms, 300);
        assert!(throttle("5g").is_err());
    }
}
