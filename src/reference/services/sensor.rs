//! `SensorService`: readings recorded, watched and queried (CONTRACT.md
//! section 2). The per-device store that connects Record to Latest is shared
//! by every connection of one server and lives as long as its routes.

use super::control::pad_to;
use super::script::{self, ResponseStream};
use super::sensor_store::LatestStore;
use super::{start, start_single};
use crate::proto::contract::{
    sensor_service_server::SensorService, DeviceQuery, RecordSummary, SensorData, WatchRequest,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tonic::{Request, Response, Status, Streaming};

/// Readings of Watch when `limit` is 0 and no response count is given.
const DEFAULT_WATCH_COUNT: u32 = 3;
/// Timestamp of Watch's first reading; each next one is 1 later.
const WATCH_FIRST_TIMESTAMP: i64 = 1000;
/// Temperature of Watch's first reading.
const WATCH_FIRST_TEMPERATURE: f32 = 20.0;
/// Temperature step between Watch's readings.
const WATCH_TEMPERATURE_STEP: f32 = 0.25;

/// Bytes of distinct device ids one Record call may name; past it the call
/// ends with RESOURCE_EXHAUSTED (its reply lists each id once).
pub const MAX_RECORD_DEVICE_BYTES: usize = 4 * 1024 * 1024;

/// The SensorService handlers and their store.
#[derive(Debug, Default, Clone)]
pub struct SensorServiceImpl {
    /// Per device, the last reading of the last Record call that ended OK.
    latest: Arc<Mutex<LatestStore>>,
}

/// The summary of one Record call, built as readings arrive.
#[derive(Debug, Default)]
struct Summary {
    /// What goes back to the client.
    reply: RecordSummary,
    /// Sum of temperatures in f64, so a long stream of f32 readings keeps
    /// its precision for the mean.
    sum: f64,
    /// Per device, its last reading in this call, stored only if the call
    /// ends OK; also the set of ids already in `reply.device_ids`.
    last: HashMap<String, SensorData>,
    /// Bytes of the ids in `reply.device_ids`.
    id_bytes: usize,
}

impl Summary {
    fn add(&mut self, reading: SensorData) -> Result<(), Status> {
        if reading.device_id.is_empty() {
            return Err(Status::invalid_argument(format!(
                "Record: reading {} has an empty device_id",
                self.reply.count + 1
            )));
        }
        let r = &mut self.reply;
        if r.count == 0 {
            r.min = reading.temperature;
            r.max = reading.temperature;
            r.first_timestamp = reading.timestamp;
        } else {
            r.min = r.min.min(reading.temperature);
            r.max = r.max.max(reading.temperature);
            if reading.timestamp < r.last_timestamp {
                r.out_of_order += 1;
            }
        }
        r.count += 1;
        r.last_timestamp = reading.timestamp;
        self.sum += f64::from(reading.temperature);
        if let Some(last) = self.last.get_mut(&reading.device_id) {
            *last = reading;
            return Ok(());
        }
        self.id_bytes += reading.device_id.len();
        if self.id_bytes > MAX_RECORD_DEVICE_BYTES {
            return Err(Status::resource_exhausted(format!(
                "Record: the distinct device ids exceed {MAX_RECORD_DEVICE_BYTES} bytes \
                 at reading {}",
                r.count
            )));
        }
        r.device_ids.push(reading.device_id.clone());
        self.last.insert(reading.device_id.clone(), reading);
        Ok(())
    }

    fn finish(mut self) -> (RecordSummary, HashMap<String, SensorData>) {
        if self.reply.count > 0 {
            self.reply.mean = self.sum / f64::from(self.reply.count);
        }
        (self.reply, self.last)
    }
}

fn require_device(device_id: &str, method: &str) -> Result<(), Status> {
    if device_id.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{method}: device_id must not be empty"
        )));
    }
    Ok(())
}

impl SensorServiceImpl {
    fn store(&self) -> std::sync::MutexGuard<'_, LatestStore> {
        // A poisoned lock only means a panic mid-insert of a whole reading;
        // the map itself is still consistent.
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl SensorService for SensorServiceImpl {
    async fn record(
        &self,
        request: Request<Streaming<SensorData>>,
    ) -> Result<Response<RecordSummary>, Status> {
        let (pacer, ctx) = start(&request)?;
        pacer.fail_at_start().await?;
        let mut input = request.into_inner();
        let mut summary = Summary::default();
        script::read_requests(&mut input, &ctx, &pacer, |reading| summary.add(reading)).await?;
        let (mut reply, last) = summary.finish();
        if pacer.control().response_size.is_some() {
            // The contract pads the last device id, or one added when none.
            let last_id = reply.device_ids.pop().unwrap_or_default();
            reply.device_ids.push(pacer.control().pad(last_id));
        }
        let response = script::reply(&pacer, reply).await?;
        let mut store = self.store();
        for reading in last.into_values() {
            store.insert(reading);
        }
        drop(store);
        Ok(response)
    }

    type WatchStream = ResponseStream<SensorData>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let pacer = start_single(&request)?;
        let WatchRequest { device_id, limit } = request.into_inner();
        require_device(&device_id, "Watch")?;
        let count = match (pacer.control().response_count, limit) {
            (Some(count), _) => count,
            (None, 0) => DEFAULT_WATCH_COUNT,
            (None, limit) => limit,
        };
        let size = pacer.control().response_size;
        let readings = script::server_stream(pacer, count, move |i| SensorData {
            timestamp: WATCH_FIRST_TIMESTAMP + i64::from(i),
            temperature: WATCH_FIRST_TEMPERATURE + WATCH_TEMPERATURE_STEP * i as f32,
            device_id: pad_to(size, device_id.clone()),
        });
        Ok(Response::new(readings))
    }

    async fn latest(&self, request: Request<DeviceQuery>) -> Result<Response<SensorData>, Status> {
        let pacer = start_single(&request)?;
        let device_id = &request.get_ref().device_id;
        require_device(device_id, "Latest")?;
        pacer.fail_at_start().await?;
        let reading = self.store().get(device_id);
        match reading {
            Some(mut reading) => {
                reading.device_id = pacer.control().pad(reading.device_id);
                script::reply(&pacer, reading).await
            }
            None => Err(Status::not_found(format!(
                "Latest: no Record call stored a reading for device {device_id:?}"
            ))),
        }
    }
}
