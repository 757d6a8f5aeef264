"""Federation (issue 12): independent hubs peering with each other — keys, signed requests
between hubs, the peers a hub has agreed to share work with, and what may be sent to them."""
