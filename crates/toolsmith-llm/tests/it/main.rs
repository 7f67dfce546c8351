mod client;
mod helpers;
mod structured;
