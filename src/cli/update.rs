use crate::container::Globals;
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// linux.resources JSON file, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

pub fn run(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("update {}: not implemented yet", a.id)
}
