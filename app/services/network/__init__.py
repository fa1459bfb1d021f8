"""The referral network: codes and shared links, the referral chain, the downline tree."""
