//! Free loopback ports for servers a test starts.

/// A loopback port nobody listens on right now (the OS picks it; a server may still lose the
/// race, so starters retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// A free port `p` whose `p + offset` is free too, below Linux's ephemeral range (SeaweedFS
/// also listens on each port + 10000 for gRPC).
pub fn free_port_pair(offset: u16) -> u16 {
    loop {
        let p = 15000 + (free_port() % 7000);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + offset)).is_ok()
        {
            return p;
        }
    }
}
