//! The store that connects `SensorService.Record` to `Latest`: per device,
//! the last reading of the last Record call that ended OK. Bounded: at most
//! [`MAX_STORED_DEVICES`] devices and [`MAX_STORED_BYTES`] of readings; past
//! either, the device stored longest ago is forgotten first (its `Latest`
//! answers NOT_FOUND again), so a server running for days under clients that
//! invent device ids keeps a fixed footprint.

use crate::proto::contract::SensorData;
use std::collections::{BTreeMap, HashMap};

/// Devices remembered at most.
pub const MAX_STORED_DEVICES: usize = 10_000;
/// Bytes of stored readings at most (each counted as its device id twice,
/// as the map key and in the reading, plus a fixed share for the rest).
pub const MAX_STORED_BYTES: usize = 16 * 1024 * 1024;
/// What a reading costs besides its device id.
const READING_OVERHEAD: usize = 64;

/// The last reading per device, the oldest stored evicted first.
#[derive(Debug, Default)]
pub struct LatestStore {
    /// Device id → (when stored, reading).
    readings: HashMap<String, (u64, SensorData)>,
    /// When stored → device id; the first entry is the next to evict.
    order: BTreeMap<u64, String>,
    /// The next store stamp.
    next: u64,
    /// Bytes counted of every reading kept.
    bytes: usize,
}

/// The bytes a reading of `device_id` is counted for.
fn cost(device_id: &str) -> usize {
    2 * device_id.len() + READING_OVERHEAD
}

impl LatestStore {
    /// Stores `reading` as its device's latest, evicting the oldest as needed.
    pub fn insert(&mut self, reading: SensorData) {
        let id = reading.device_id.clone();
        if let Some((stamp, _)) = self.readings.remove(&id) {
            self.order.remove(&stamp);
            self.bytes -= cost(&id);
        }
        let stamp = self.next;
        self.next += 1;
        self.bytes += cost(&id);
        self.order.insert(stamp, id.clone());
        self.readings.insert(id, (stamp, reading));
        while self.readings.len() > MAX_STORED_DEVICES || self.bytes > MAX_STORED_BYTES {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.readings.remove(&oldest);
            self.bytes -= cost(&oldest);
        }
    }

    /// The latest reading of `device_id`, if still stored.
    pub fn get(&self, device_id: &str) -> Option<SensorData> {
        self.readings.get(device_id).map(|(_, r)| r.clone())
    }

    /// Devices stored now.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// Whether no device is stored.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(id: &str, timestamp: i64) -> SensorData {
        SensorData {
            device_id: id.into(),
            timestamp,
            temperature: 1.0,
        }
    }

    #[test]
    fn the_oldest_device_goes_first_past_the_count() {
        let mut store = LatestStore::default();
        for i in 0..MAX_STORED_DEVICES + 5 {
            store.insert(reading(&format!("d{i}"), i as i64));
        }
        assert_eq!(store.len(), MAX_STORED_DEVICES);
        assert!(store.get("d4").is_none());
        assert_eq!(store.get("d5").map(|r| r.timestamp), Some(5));
    }

    #[test]
    fn storing_again_refreshes_a_device() {
        let mut store = LatestStore::default();
        store.insert(reading("a", 1));
        for i in 0..MAX_STORED_DEVICES - 1 {
            store.insert(reading(&format!("d{i}"), 0));
        }
        store.insert(reading("a", 2));
        store.insert(reading("new", 3));
        assert_eq!(store.get("a").map(|r| r.timestamp), Some(2));
        assert!(store.get("d0").is_none(), "d0 was the oldest");
    }

    #[test]
    fn large_ids_are_bounded_by_bytes() {
        let mut store = LatestStore::default();
        let big = "x".repeat(1024 * 1024);
        for i in 0..40 {
            store.insert(reading(&format!("{big}{i}"), i));
        }
        assert!(store.bytes <= MAX_STORED_BYTES, "{}", store.bytes);
        assert!(store.len() < 10, "{}", store.len());
        assert!(store.get(&format!("{big}39")).is_some());
    }
}
