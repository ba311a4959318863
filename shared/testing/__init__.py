"""Test support shared by every suite: fixtures, factories, throwaway servers."""
