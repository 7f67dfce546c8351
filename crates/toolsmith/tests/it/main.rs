mod cli;
mod engine;
mod errors;
mod health;
mod helpers;
mod jobs;
mod sandbox;
mod sessions;
