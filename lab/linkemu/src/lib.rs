//! linkemu: a userspace link emulator for the network lab. It joins two
//! network interfaces (veth ends in a "wire" namespace) by copying every
//! Ethernet frame from one to the other through AF_PACKET sockets, with a
//! one-way delay and random loss per direction, changeable while it runs
//! through a control file. It stands in for the `netem` qdisc, which some
//! kernels lack; bandwidth is left to `tc tbf` on the same interfaces.

pub mod control;
pub mod packet;
pub mod params;
pub mod pump;
