//! The paths a stream can take between two vnets: [`relay`], through the
//! route on a data connection of its own from each vnet, and [`direct`],
//! on a link straight between the two vnets once the route has
//! introduced them. The stream sides (`visiting`, `serving`) choose.
pub(crate) mod direct;
pub(crate) mod relay;
