//! Connected loopback sockets for tests (feature `test-util`).
use tokio::net::{TcpSocket, TcpStream};

/// Two connected loopback sockets. `buffers` fixes their socket buffers,
/// which also turns off autotuning, so how much they can hold is known.
pub async fn socket_pair(buffers: Option<u32>) -> (TcpStream, TcpStream) {
    let socket = || {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = buffers {
            socket.set_recv_buffer_size(size).unwrap();
            socket.set_send_buffer_size(size).unwrap();
        }
        socket
    };
    let listener = socket();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let (connected, accepted) = tokio::join!(socket().connect(addr), listener.accept());
    (connected.unwrap(), accepted.unwrap().0)
}
