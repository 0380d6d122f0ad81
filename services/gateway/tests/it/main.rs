//! Gateway tests: the edge stack on test routes, and the real application.

mod account_security;
mod ads;
mod ads_creatives;
mod ads_media;
mod ads_post_images;
mod ads_post_videos;
mod ads_posts;
mod ads_scheduler;
mod analytics;
mod app;
mod auth;
mod billing;
mod commerce;
mod contacts;
mod content;
mod crm;
mod edge;
mod support;
mod trace;
mod transfer;
mod videos;
mod webhook_endpoints;
mod whatsapp;
