//! `DiscoveryService`: search, trending, "for you" and calendar feeds, all
//! answered by the feed service. Anyone may search; "for you" and calendar
//! links need a signed-in caller; a calendar link itself is the credential
//! of its feed (calendar apps send no tokens).

use tonic::Request;

use cityevents_proto::cityevents::api::v1::{
    self as api, discovery_service_server::DiscoveryService,
};
use cityevents_proto::cityevents::feed::v1 as fd;
use cityevents_proto::google::api::HttpBody;

use super::{Api, Reply, answer, ok};

#[tonic::async_trait]
impl DiscoveryService for Api {
    async fn search_events(
        &self,
        req: Request<api::SearchEventsRequest>,
    ) -> Reply<api::SearchEventsResponse> {
        let caller = self.edge.admit(&req).await?;
        let msg = req.get_ref().search.clone().unwrap_or_default();
        let r = answer(
            self.backends
                .feed
                .clone()
                .search(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events = r.events;
        self.with_card_covers(&mut events).await;
        ok(api::SearchEventsResponse {
            events,
            next_page_token: r.next_page_token,
        })
    }

    async fn get_trending(
        &self,
        req: Request<api::GetTrendingRequest>,
    ) -> Reply<api::GetTrendingResponse> {
        let caller = self.edge.admit(&req).await?;
        let m = req.get_ref();
        let msg = fd::TrendingRequest {
            near: m.near,
            page_size: m.page_size,
            categories: m.categories.clone(),
        };
        let r = answer(
            self.backends
                .feed
                .clone()
                .trending(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events = r.events;
        self.with_card_covers(&mut events).await;
        ok(api::GetTrendingResponse { events })
    }

    async fn get_for_you(
        &self,
        req: Request<api::GetForYouRequest>,
    ) -> Reply<api::GetForYouResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = fd::PersonalFeedRequest {
            near: m.near,
            page_size: m.page_size,
            page_token: m.page_token.clone(),
        };
        let out = caller.outbound(&req, msg);
        let r = answer(self.backends.feed.clone().personal_feed(out)).await?;
        let mut events = r.events;
        self.with_card_covers(&mut events).await;
        ok(api::GetForYouResponse {
            events,
            next_page_token: r.next_page_token,
        })
    }

    async fn rotate_calendar_link(
        &self,
        req: Request<api::RotateCalendarLinkRequest>,
    ) -> Reply<api::RotateCalendarLinkResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let out = caller.outbound(&req, fd::RotateCalendarSecretRequest {});
        let r = answer(self.backends.feed.clone().rotate_calendar_secret(out)).await?;
        ok(api::RotateCalendarLinkResponse {
            path: format!("/v1/calendar/{}.ics", r.secret),
            secret: r.secret,
        })
    }

    async fn get_calendar(&self, req: Request<api::GetCalendarRequest>) -> Reply<HttpBody> {
        let raw = &req.get_ref().secret;
        let secret = raw.strip_suffix(".ics").unwrap_or(raw).to_owned();
        self.calendar(&req, fd::calendar_request::Source::Secret(secret))
            .await
    }

    async fn search_calendar(&self, req: Request<api::SearchCalendarRequest>) -> Reply<HttpBody> {
        let search = req.get_ref().search.clone().unwrap_or_default();
        self.calendar(&req, fd::calendar_request::Source::Search(search))
            .await
    }
}

impl Api {
    /// The iCalendar document of `source`, for anyone the edge admits.
    async fn calendar<T>(
        &self,
        req: &Request<T>,
        source: fd::calendar_request::Source,
    ) -> Reply<HttpBody> {
        let caller = self.edge.admit(req).await?;
        let msg = fd::CalendarRequest {
            source: Some(source),
        };
        let out = caller.outbound(req, msg);
        let r = answer(self.backends.feed.clone().calendar(out)).await?;
        ok(HttpBody {
            content_type: "text/calendar; charset=utf-8".into(),
            data: r.ics.into_bytes(),
            extensions: Vec::new(),
        })
    }
}
