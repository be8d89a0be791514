//! The connector's ingress YAML at the config-size bound
//! (`DEFAULT_MAX_CONFIG_BYTES`, 1 MiB: what `IngressConfig::load` reads at
//! most). Parse and validate must never panic and must finish each input
//! quickly (the script runs this target with `-max_len` at the bound and a
//! `-timeout`); a config that loads must answer `find` for any host and
//! path, with a rule it has or the no-match rule.
//!
//! The first byte chooses: with bit 7 clear the rest is the YAML text as
//! is; with it set the rest drives a generator that writes many rules
//! (hostnames, wildcards, path regexes, every kind of service, pools,
//! `originRequest` blocks, anchors and merges) until the text is about
//! `1 MiB >> (low four bits)` long, so valid and nearly valid configs of
//! every size up to the bound are parsed whole.
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use warren_connector::ingress::{IngressConfig, DEFAULT_MAX_CONFIG_BYTES};

/// The bound, as a length.
const BOUND: usize = DEFAULT_MAX_CONFIG_BYTES as usize;

/// Values taken from the input, cycling through it.
struct Gen<'a> {
    data: &'a [u8],
    at: usize,
    /// How often (out of 256) a choice that is likely invalid is made: 0
    /// gives configs that load whole.
    wild: u8,
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at % self.data.len().max(1)).copied();
        self.at += 1;
        b.unwrap_or(0)
    }

    fn port(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Whether to make the likely invalid choice this time.
    fn wild(&mut self) -> bool {
        self.byte() < self.wild
    }

    /// A short word of host-name characters.
    fn plain(&mut self) -> String {
        const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = usize::from(self.byte() % 12) + 1;
        (0..len)
            .map(|_| char::from(PLAIN[usize::from(self.byte()) % PLAIN.len()]))
            .collect()
    }

    /// A short word that may hold characters YAML, regexes and URLs treat
    /// specially.
    fn word(&mut self) -> String {
        const ANY: &[u8] =
            b"abcdefghijklmnopqrstuvwxyz0123456789-.*:/_ ?[]{}()#&!|>'\"%@`\\,^$+\t\n";
        let len = usize::from(self.byte() % 12);
        (0..len)
            .map(|_| char::from(ANY[usize::from(self.byte()) % ANY.len()]))
            .collect()
    }
}

/// Origin `j` of a pool or a service (distinct for distinct `j`).
fn origin(g: &mut Gen, tcp: bool, j: usize) -> String {
    let scheme = if tcp { "tcp" } else { "http" };
    format!("{scheme}://127.0.0.{}:{}", g.byte(), 1024 + j % 64_000)
}

/// The body of an `originRequest` block, at `indent` (never empty).
fn origin_request(g: &mut Gen, out: &mut String, indent: &str) {
    let keys = g.byte();
    let _ = writeln!(out, "{indent}noHappyEyeballs: {}", keys & 1 != 0);
    if keys & 2 != 0 {
        let _ = writeln!(out, "{indent}connectTimeout: {}s", g.byte());
    }
    if keys & 4 != 0 {
        let timeout = if g.wild() {
            g.word()
        } else {
            format!("{}ms", g.port())
        };
        let _ = writeln!(out, "{indent}tlsTimeout: {timeout}");
    }
    if keys & 8 != 0 {
        let _ = writeln!(out, "{indent}noTLSVerify: true");
        let _ = writeln!(out, "{indent}keepAliveConnections: {}", g.port());
    }
    if keys & 16 != 0 {
        let modes = ["verify-full", "verify-ca", "require", "disable"];
        let mode = if g.wild() {
            g.word()
        } else {
            modes[usize::from(g.byte() % 4)].to_string()
        };
        let _ = writeln!(out, "{indent}sslmode: {mode}");
    }
    if keys & 32 != 0 {
        let _ = writeln!(out, "{indent}httpHostHeader: {}.example.com", g.plain());
        let version = if g.wild() { 0 } else { 1 + g.byte() % 2 };
        let _ = writeln!(out, "{indent}proxyProtocol: v{version}");
    }
    if keys & 64 != 0 {
        let tag: String = (0..16).map(|_| format!("{:02x}", g.byte())).collect();
        let _ = writeln!(
            out,
            "{indent}access: {{ required: {}, audTag: [{tag}] }}",
            keys & 128 != 0
        );
    }
}

/// The body of an `originPool` block with `n` origins, at `indent`.
fn pool(g: &mut Gen, out: &mut String, indent: &str, n: usize) {
    let tcp = g.byte() & 1 == 0;
    let origins: Vec<String> = (0..n).map(|j| origin(g, tcp, j)).collect();
    let _ = writeln!(out, "{indent}origins: [{}]", origins.join(", "));
    let shape = g.byte();
    let steering = match shape & 3 {
        0 => "round_robin",
        1 => "least_outstanding",
        2 => "hash",
        _ if g.wild() => "random",
        _ => "round_robin",
    };
    let _ = writeln!(out, "{indent}steering: {steering}");
    if steering == "hash" || g.wild() {
        match (shape >> 2) & 3 {
            0 => {}
            1 if !tcp || g.wild() => {
                let _ = writeln!(out, "{indent}hashOn: header:x-{}", g.plain());
            }
            2 if !tcp || g.wild() => {
                let _ = writeln!(out, "{indent}hashOn: cookie:{}", g.plain());
            }
            _ => {
                let _ = writeln!(out, "{indent}hashOn: client_ip");
            }
        }
    }
    if shape & 16 != 0 {
        let _ = writeln!(out, "{indent}healthCheck:");
        if !tcp || g.wild() {
            let _ = writeln!(out, "{indent}  path: /{}", g.plain());
        }
        let least = u8::from(!g.wild());
        let _ = writeln!(out, "{indent}  interval: {}s", g.byte() % 8 + least);
        let _ = writeln!(out, "{indent}  timeout: {}ms", g.port().max(least.into()));
        let _ = writeln!(out, "{indent}  unhealthyAfter: {}", g.byte() % 4 + least);
        let _ = writeln!(out, "{indent}  healthyAfter: {}", g.byte() % 4 + least);
    }
}

/// Rule `i` (0-based), never a catch-all unless wild. `aliases`: the first
/// rule's `originRequest` is the anchor `o`, which later rules use whole
/// or merge into theirs.
fn rule(g: &mut Gen, out: &mut String, i: usize, aliases: bool) {
    let shape = g.byte();
    out.push_str("  -");
    match shape & 3 {
        0 if g.wild() => {}
        3 if g.wild() => {
            let _ = writeln!(out, " hostname: {}", g.word());
        }
        2 => {
            let _ = writeln!(out, " hostname: \"*.{}{i}.example.com\"", g.plain());
        }
        _ => {
            let _ = writeln!(out, " hostname: h{i}.example.com");
        }
    }
    match (shape >> 2) & 3 {
        0 => {}
        1 => {
            let _ = writeln!(out, "    path: ^/p{i}/");
        }
        2 if g.wild() => {
            let _ = writeln!(out, "    path: '{}'", g.word().replace('\'', "''"));
        }
        _ => {
            let _ = writeln!(out, "    path: \"(a|b)*{}$\"", g.byte());
        }
    }
    let service = match g.byte() % 10 {
        0 => format!("http://localhost:{}", g.port().max(1)),
        1 => format!("https://127.0.0.{}:{}", g.byte(), g.port().max(1)),
        2 => origin(g, true, i),
        3 => format!("unix:/run/app{i}.sock"),
        4 if g.wild() => format!("http_status:{}", g.port() % 700),
        4 => format!("http_status:{}", 100 + g.port() % 500),
        5 => "hello_world".into(),
        6 => format!("postgres://localhost:{}", g.port().max(1)),
        7 => "pool".into(),
        8 if g.wild() => g.word(),
        _ => "ssh://localhost".into(),
    };
    let _ = writeln!(out, "    service: {service}");
    if service == "pool" {
        out.push_str("    originPool:\n");
        let n = usize::from(g.byte() % 8) + 1;
        pool(g, out, "      ", n);
    }
    match (shape >> 4) & 3 {
        0 => {}
        1 if aliases && i > 0 => out.push_str("    originRequest: *o\n"),
        2 if aliases && i > 0 => {
            out.push_str("    originRequest:\n      <<: *o\n");
            origin_request(g, out, "      ");
        }
        _ => {
            let anchor = if aliases && i == 0 { " &o" } else { "" };
            let _ = writeln!(out, "    originRequest:{anchor}");
            origin_request(g, out, "      ");
        }
    }
    if shape >> 6 == 3 {
        let _ = writeln!(out, "    {}: {}", g.plain(), g.word());
    }
}

/// The config `data` describes, at most about `1 MiB >> (control & 15)`
/// bytes long. Bits of `control`: 0x10 anchors and merges, 0x20 no
/// catch-all at the end, 0x40 one pool as large as the size allows first.
/// The first byte of `data` sets how wild the choices are.
fn generate(control: u8, data: &[u8]) -> String {
    let budget = BOUND >> (control & 15);
    let aliases = control & 0x10 != 0;
    let catch_all = control & 0x20 == 0;
    let mut g = Gen {
        data,
        at: 0,
        wild: 0,
    };
    g.wild = g.byte() >> 4;
    let mut out = String::with_capacity(budget + 4096);
    if g.byte() & 1 != 0 {
        out.push_str("tunnel: fuzz\noriginRequest:\n");
        origin_request(&mut g, &mut out, "  ");
    }
    out.push_str("ingress:\n");
    let last = "  - service: http_status:404\n";
    if control & 0x40 != 0 {
        out.push_str("  - hostname: pool.example.com\n    service: pool\n    originPool:\n");
        // An origin takes up to 27 bytes: "http://127.0.0.255:65023, ".
        let n = budget.saturating_sub(out.len() + last.len() + 512) / 27;
        pool(&mut g, &mut out, "      ", n.max(1));
    }
    let mut i = 0;
    loop {
        let mark = out.len();
        rule(&mut g, &mut out, i, aliases);
        if out.len() + last.len() > budget {
            out.truncate(mark);
            break;
        }
        i += 1;
    }
    if catch_all {
        out.push_str(last);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    let text = if control & 0x80 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    } else {
        let text = generate(*control, rest);
        assert!(text.len() <= BOUND, "the generator went past the bound");
        text
    };
    if let Ok(cfg) = IngressConfig::from_yaml(&text) {
        assert!(!cfg.rules.is_empty());
        for (host, path) in [("h1.example.com", "/p1/x"), ("app.example.com", "/")] {
            let (i, rule) = cfg.find(host, path);
            assert!(i <= cfg.rules.len());
            let _ = rule.describe(i);
        }
    }
});
